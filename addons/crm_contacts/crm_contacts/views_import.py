"""Import pages: upload, mapping with a standardized preview, dry run, background run, report, revert."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import customfields, db, jobs
from core.errors import TooLarge, ValidationError
from core.i18n import N_
from core.web import access, render
from crm_contacts.importing import (
    FIELDS,
    KEYS,
    MODES,
    REQUIRED,
    Importer,
    auto_mapping,
    batch_counts,
    optional_fields,
    report_csv,
    revert,
)
from crm_contacts.labels import FIELD_LABELS, MODE_LABELS, OUTCOME_LABELS
from crm_contacts.tabular import ENCODINGS, detect, is_xlsx, read_table

IMPORT = "crm_contacts.import"
MAX_UPLOAD = 50 * 1024 * 1024


async def import_list(request: Request) -> Response:
    from crm_contacts.models import ImportBatch

    acc = access(request)
    cols = [ImportBatch.id, ImportBatch.filename, ImportBatch.status, ImportBatch.total, ImportBatch.created,
            ImportBatch.updated, ImportBatch.skipped, ImportBatch.failed, ImportBatch.created_at]
    batches = await (await acc.select(ImportBatch, IMPORT, *cols)).order_by(ImportBatch.id, ascending=False).limit(100)
    return await render(request, "crm_contacts/import_list.html", batches=batches, can_create=acc.can(IMPORT, "create"),
                        encodings=ENCODINGS, outcomes=OUTCOME_LABELS)


async def import_upload(request: Request) -> Response:
    from crm_contacts.models import ImportBatch

    acc = access(request)
    await acc.require(IMPORT, "create")
    form = await request.form()  # the kernel caps the whole body (CRM_MAX_REQUEST_MB); the file, here
    upload: Any = form.get("file")
    if upload is None or not getattr(upload, "filename", ""):
        raise ValidationError({"file": N_("choose a CSV or XLSX file")})
    if (upload.size or 0) > MAX_UPLOAD:  # Starlette's max_part_size does not apply to file parts
        raise TooLarge(f"The file is larger than the {MAX_UPLOAD // (1024 * 1024)} MB an import accepts.")
    content = await upload.read()
    encoding = _encoding(form, content, upload.filename)
    header, _rows = read_table(content, upload.filename, encoding)  # refuse unreadable files now, not in the job
    batch = ImportBatch(filename=upload.filename[:300], content=content, encoding=encoding or "",
                        mapping=auto_mapping(header), owner=acc.principal.user_id if acc.principal else None)
    await batch.save()
    return RedirectResponse(f"/contacts/imports/{batch.id}", status_code=303)


def _encoding(form: Any, content: bytes, filename: str) -> str | None:
    """The encoding a CSV upload is read with: the one chosen on the form, else the detected one."""
    if is_xlsx(content, filename):
        return None
    chosen = str(form.get("encoding", "") or "")
    if chosen and chosen not in ENCODINGS:
        raise ValidationError({"encoding": N_("choose one of %(choices)s") % {"choices": ", ".join(ENCODINGS)}})
    return chosen or (detect(content) if content else None)


def _read(batch: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    return read_table(batch["content"], batch["filename"], batch["encoding"] or None)


async def _batch(request: Request, action: str = "read") -> tuple[Any, dict[str, Any]]:
    from crm_contacts.models import ImportBatch

    acc = access(request)
    row = await acc.get(ImportBatch, IMPORT, int(request.path_params["id"]), action=action)
    for key in ("mapping", "keys", "drop_invalid"):
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return acc, row


def _settings(form: Any, header: list[str]) -> tuple[dict[str, str], str, list[str], list[str]]:
    """Mapping, mode, keys and the fields whose bad values are left out (per column: ``drop_<i>``; a choice on a
    field a row needs is moot, as on an unmapped column)."""
    mapping = {col: str(form.get(f"map_{i}", "")) for i, col in enumerate(header) if form.get(f"map_{i}")}
    mode, keys = str(form.get("mode", "create")), [str(k) for k in form.getlist("keys")]
    optional = optional_fields(mapping, mode, keys)
    drop = [mapping[col] for i, col in enumerate(header)
            if form.get(f"drop_{i}") == "1" and mapping.get(col) in optional]
    return mapping, mode, keys, drop


async def import_detail(request: Request) -> Response:
    """Mapping form and preview (first rows standardized, not written); progress and counts once started."""
    from crm_contacts.models import ImportRow

    acc, batch = await _batch(request)
    preview, problems, results = [], {}, None
    try:
        header, rows = _read(batch)
    except ValidationError as exc:  # read with an encoding the user chose: say why, let them choose again
        header, rows, problems = [], [], exc.fields
    if header and request.method == "POST":
        form = await request.form()
        mapping, mode, keys, drop = _settings(form, header)
        batch.update(mapping=mapping, mode=mode, keys=keys, drop_invalid=drop)
        try:
            importer = Importer(acc, header, rows, mapping, mode, keys, drop_invalid=drop)
            results = await importer.run(dry_run=True)
        except ValidationError as exc:
            problems = exc.fields
    elif header and batch["status"] == "uploaded":
        try:
            preview = await Importer(acc, header, rows[:5], batch["mapping"], batch["mode"], batch["keys"],
                                     drop_invalid=batch["drop_invalid"]).run(dry_run=True)
        except ValidationError as exc:
            problems = exc.fields
    failures = await ImportRow.select().where((ImportRow.batch == batch["id"]) & ImportRow.action.is_in(
        ["failed", "skipped"])).order_by(ImportRow.row_no).limit(200)
    # an imported row's message: values left out (import) or, once reverted, fields changed since (revert)
    noted = await ImportRow.select().where((ImportRow.batch == batch["id"]) & ImportRow.action.is_in(
        ["created", "updated"]) & (ImportRow.message != "")).order_by(ImportRow.row_no).limit(200)
    reverted = batch["status"] == "reverted"
    conflicts = [r for r in noted if reverted and r["action"] == "updated"]
    warnings = [] if reverted else noted
    custom = {f.name: f.label for f in customfields.visible(acc, "crm_contacts.person")}  # custom fields, too
    return await render(request, "crm_contacts/import_detail.html", batch=batch, header=header, sample=rows[:5],
                  fields=(*FIELDS, *custom), keys=KEYS, modes=MODES, preview=preview, results=results,
                  warnings=warnings, content=_content(header, rows, [*failures, *warnings]), required=REQUIRED,
                  problems=problems, labels={**FIELD_LABELS, **custom}, mode_labels=MODE_LABELS,
                  outcomes=OUTCOME_LABELS,
                  failures=failures, conflicts=conflicts, encodings=ENCODINGS,
                  running=batch["status"] in ("queued", "running"))


def _content(header: list[str], rows: list[list[str]], reported: list[dict[str, Any]]
             ) -> dict[int, list[tuple[str, str]]]:
    """Row number → its non-empty cells as (column, value): what the user reads to fix a row not imported."""
    out: dict[int, list[tuple[str, str]]] = {}
    for r in reported:
        at = int(r["row_no"]) - 2  # row 1 is the header
        if 0 <= at < len(rows):
            out[int(r["row_no"])] = [(c, v) for c, v in zip(header, rows[at], strict=False) if str(v).strip()]
    return out


async def import_encoding(request: Request) -> Response:
    """Read an uploaded CSV file again in the encoding the user chose (the detected one can be wrong)."""
    from crm_contacts.models import ImportBatch

    _, batch = await _batch(request, "update")
    if batch["status"] != "uploaded" or not batch["encoding"]:
        raise ValidationError({"encoding": N_("only a CSV file not imported yet can be read again")})
    chosen = str((await request.form()).get("encoding", ""))
    if chosen not in ENCODINGS:
        raise ValidationError({"encoding": N_("choose one of %(choices)s") % {"choices": ", ".join(ENCODINGS)}})
    changes: dict[Any, Any] = {ImportBatch.encoding: chosen}
    with contextlib.suppress(ValidationError):  # the columns may read differently now: map them again (when
        changes[ImportBatch.mapping] = auto_mapping(_read({**batch, "encoding": chosen})[0])  # the file reads)
    await ImportBatch.update(changes).where(ImportBatch.id == batch["id"])
    return RedirectResponse(f"/contacts/imports/{batch['id']}", status_code=303)


async def import_start(request: Request) -> Response:
    from crm_contacts.models import ImportBatch

    acc, batch = await _batch(request, "update")
    if batch["status"] != "uploaded":
        raise ValidationError({"status": N_("this import is already %(state)s") % {"state": batch["status"]}})
    header, rows = _read(batch)
    mapping, mode, keys, drop = _settings(await request.form(), header)
    Importer(acc, header, rows, mapping, mode, keys, drop_invalid=drop)  # validates the settings (422 naming why)
    async with db.atomic():
        await ImportBatch.update({ImportBatch.mapping: mapping, ImportBatch.mode: mode, ImportBatch.keys: keys,
                                  ImportBatch.drop_invalid: drop,
                                  ImportBatch.status: "queued", ImportBatch.total: len(rows)}).where(
            ImportBatch.id == batch["id"])
        await jobs.enqueue("crm_contacts.run_import", dedup_key=f"crm_contacts.import:{batch['id']}",
                           batch_id=batch["id"], user_id=acc.principal.user_id if acc.principal else None)
    return RedirectResponse(f"/contacts/imports/{batch['id']}", status_code=303)


async def import_report(request: Request) -> Response:
    _, batch = await _batch(request)
    return Response(await report_csv(batch["id"]), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="import-{batch["id"]}-report.csv"'})


async def import_revert(request: Request) -> Response:
    """GET: what reverting would do, and a button to confirm; POST (confirmed): revert."""
    acc, batch = await _batch(request, "update")
    if request.method == "POST" and (await request.form()).get("confirm") == "yes":
        await revert(acc, batch["id"])
        return RedirectResponse(f"/contacts/imports/{batch['id']}", status_code=303)
    if batch["status"] != "done":
        raise ValidationError({"status": N_("only a finished import can be reverted (this one is %(state)s)") % {
            "state": batch["status"]}})
    return await render(request, "crm_contacts/import_revert.html", batch=batch,
                        counts=await batch_counts(int(batch["id"])))


ROUTES = [
    Route("/imports", import_list, name="import_list"),
    Route("/imports", import_upload, methods=["POST"], name="import_upload"),
    Route("/imports/{id:int}", import_detail, methods=["GET", "POST"], name="import_detail"),
    Route("/imports/{id:int}/encoding", import_encoding, methods=["POST"], name="import_encoding"),
    Route("/imports/{id:int}/start", import_start, methods=["POST"], name="import_start"),
    Route("/imports/{id:int}/report.csv", import_report, name="import_report"),
    Route("/imports/{id:int}/revert", import_revert, methods=["GET", "POST"], name="import_revert"),
]
