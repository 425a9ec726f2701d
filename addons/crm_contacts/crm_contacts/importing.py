"""Import people from CSV/XLSX: mapping, preview, dry run, create/update/upsert, report, revert.

Each row is standardized with the same rules as the form and the API, then written in its own transaction,
so a bad row is reported (``ImportRow`` with the reason) and never stops the good ones, and no record is
ever half-written. Rows are matched on the chosen keys (email, phone, id); a row repeating a key of an
earlier row of the same file is reported, not imported twice. The job is resumable: a re-run continues
after the last row it recorded. Revert archives the records the import created (other addons may already
refer to them, so they are not deleted) and restores the fields it changed on updated records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core import customfields, db, hooks, jsontext
from core.bulk import any_of, copy_rows, insert_rows
from core.errors import CrmError, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_contacts import events
from crm_contacts.api import PERSON_MODEL
from crm_contacts.import_rows import Spec, Standardized, default_workers, pool, standardize_chunk, standardize_row
from crm_contacts.tabular import read_table, write_csv

FIELDS = ("name", "given_name", "family_name", "email", "phone", "company", "job_title", "country", "region",
          "province", "city", "stage", "source", "language", "birth_date", "industry", "tags", "note", "id")
KEYS = ("email", "phone", "id")
#: fields a row can do without: a bad value in one of them may be dropped with a warning instead (``drop_invalid``)
REQUIRED = ("name", "given_name", "family_name", "id")
MODES = ("create", "update", "upsert")
SYNONYMS = {
    "name": ("name", "full name", "fullname", "contact", "contact name", "姓名", "联系人", "名称", "客户名称"),
    "given_name": ("given name", "first name", "firstname", "given_name", "名"),
    "family_name": ("family name", "last name", "surname", "lastname", "family_name", "姓"),
    "email": ("email", "e-mail", "mail", "email address", "邮箱", "电子邮件", "电子邮箱"),
    "phone": ("phone", "mobile", "telephone", "tel", "cell", "phone number", "手机", "手机号", "电话", "联系电话"),
    "company": ("company", "organization", "organisation", "employer", "account", "公司", "单位", "企业", "公司名称"),
    "job_title": ("title", "job title", "position", "job_title", "职位", "职务"),
    "country": ("country", "nation", "country code", "country/region", "国家", "国家/地区", "国家或地区", "国别"),
    "region": ("region", "location", "area", "地区", "区域", "所在地"),
    "province": ("province", "state", "省", "省份"),
    "city": ("city", "town", "城市", "市"),
    "stage": ("stage", "lifecycle", "lifecycle stage", "阶段", "客户阶段"),
    "source": ("source", "lead source", "channel", "来源", "渠道"),
    "language": ("language", "lang", "语言"),
    "birth_date": ("birth date", "birthday", "date of birth", "dob", "birth_date", "生日", "出生日期"),
    "industry": ("industry", "sector", "行业"),
    "tags": ("tags", "tag", "labels", "标签"),
    "note": ("note", "notes", "comment", "remarks", "备注"),
    "id": ("id", "crm id", "record id", "编号"),
}
PROGRESS_EVERY = 200
YIELD_EVERY = 5  # rows standardized between two chances for the write in flight to move on
PLAN_YIELD_EVERY = 100  # rows planned (standardized elsewhere) between two such chances: the writes' database
# processes otherwise wait for this loop to let their next statement out


def auto_mapping(header: list[str]) -> dict[str, str]:
    """Column header → field, from names and common synonyms (English and Chinese); unknown columns skipped."""
    out: dict[str, str] = {}
    used: set[str] = set()
    custom = {w: fd.name for fd in customfields.definitions(PERSON_MODEL)
              for w in (fd.name, fd.key, fd.label_en.casefold(), fd.label_zh) if w}
    for column in header:
        key = " ".join(column.replace("_", " ").replace("-", " ").lower().split())
        target = custom.get(column.strip()) or custom.get(column.strip().casefold())
        if target and target not in used:  # a custom field, by its name (an export's header) or label
            out[column] = target
            used.add(target)
            continue
        for name, words in SYNONYMS.items():
            if name not in used and (key in words or key == name.replace("_", " ")):
                out[column] = name
                used.add(name)
                break
    return out


def optional_fields(mapping: Mapping[str, str], mode: str, keys: list[str]) -> list[str]:
    """The mapped fields whose bad values may be dropped with a warning (not names, the id or the matching keys)."""
    fixed = {*REQUIRED, *(keys if mode != "create" else ())}
    return [f for f in mapping.values() if f and f not in fixed]


def check_mapping(header: list[str], mapping: Mapping[str, str], mode: str, keys: list[str],
                  drop_invalid: list[str] | None = None) -> None:
    """Refuse (422) a mapping that cannot work: unknown columns/fields, no name, keys not mapped, a value
    dropped from a field a row cannot do without."""
    if mode not in MODES:
        raise ValidationError({"mode": N_("must be one of %(choices)s") % {"choices": ", ".join(MODES)}})
    bad = [c for c in mapping if c not in header]
    if bad:
        raise ValidationError({"mapping": N_("column %(name)s is not in the file") % {"name": repr(bad[0])}})
    targets = [f for f in mapping.values() if f]
    unknown = [f for f in targets if f not in FIELDS and customfields.by_name(PERSON_MODEL, f) is None]
    if unknown:
        raise ValidationError({"mapping": N_("%(name)s is not an importable field") % {"name": repr(unknown[0])}})
    if len(set(targets)) != len(targets):
        raise ValidationError({"mapping": N_("two columns are mapped to the same field")})
    if mode != "update" and not {"name", "given_name", "family_name"} & set(targets):
        raise ValidationError({"mapping": N_("map a column to name (or given/family name) to create people")})
    if mode != "create":
        if not keys or any(k not in KEYS for k in keys):
            raise ValidationError({"keys": N_("choose the matching keys among %(choices)s") % {
                "choices": ", ".join(KEYS)}})
        missing = [k for k in keys if k not in targets]
        if missing:
            raise ValidationError({"keys": N_("key %(name)s is not mapped to a column") % {"name": repr(missing[0])}})
    fixed = [f for f in drop_invalid or () if f not in optional_fields(mapping, mode, keys)]
    if fixed:
        raise ValidationError({"drop_invalid": N_("a bad %(name)s cannot be left out: the row needs it") % {
            "name": repr(fixed[0])}})


@dataclass
class RowResult:
    row_no: int
    action: str  # created | updated | skipped | failed (dry run: would be created/updated)
    record_id: int | None = None
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)


async def _org_id(name: str, acc: Access, dry_run: bool) -> int | None:
    """The organization of that exact (standardized) name among those the importing user may read (a
    reference is checked like a read), created if missing (with the org create right)."""
    from crm_contacts.cleaning import clean_organization
    from crm_contacts.models import Organization

    clean = await clean_organization({"name": name})
    row = None
    if acc.can("crm_contacts.organization"):
        mine = await acc.select(Organization, "crm_contacts.organization", Organization.id,
                                where=Organization.name == clean["name"])
        row = await mine.order_by(Organization.id).first()
    if row is not None:
        return int(row["id"])
    if dry_run or not acc.can("crm_contacts.organization", "create"):
        return None
    if acc.principal and acc.principal.user_id > 0:
        clean["owner"] = acc.principal.user_id
    org = Organization(_data={Organization._meta.get_column_by_name(k): v for k, v in clean.items()})
    await org.save()
    return int(org.id)


async def _existing(values: Mapping[str, Any], keys: list[str]) -> dict[str, Any] | None:
    from crm_contacts.models import Person

    live = Person.is_archived == False  # noqa: E712
    for key in keys:
        column, value = {"email": ("email_key", values.get("email_key")), "phone": ("phone", values.get("phone")),
                         "id": ("id", values.get("id"))}[key]
        if value:
            row = await Person.select().where(live & (Person._meta.get_column_by_name(column) == value)).first()
            if row is not None:
                return dict(row)
    return None


@dataclass
class _Pending:
    row_no: int
    raw: dict[str, Any]
    clean: dict[str, Any]
    tags: list[str]
    note: str
    company: str
    record_id: int | None
    existing: dict[str, Any] | None = None
    custom: dict[str, Any] = field(default_factory=dict)  # custom fields the row sets (checked)
    warning: str = ""  # the bad values dropped from the row


class Importer:
    """One run over one file; ``run`` returns every row's outcome (and stores them unless dry run).

    Rows go in chunks of ``CHUNK``: standardized in Python (in worker processes for a large file), matched
    against the base with one query per key, new people written with one COPY (PostgreSQL) or one multi-row
    INSERT (SQLite) inside one transaction. If that transaction fails
    (a constraint of another addon, a lost connection), the chunk is redone row by row, each in its own
    transaction, so the failure is pinned on its row and the other rows still go in.
    """

    CHUNK = 500
    WRITES = 2  # PostgreSQL: chunks written side by side, on as many connections (a database process each)
    PARALLEL_FROM = 5_000  # rows: below, starting worker processes costs more than it saves
    PARALLEL_CHUNK = 2_000  # rows a transaction when standardized in workers: fewer statements (COPY, audit)

    def __init__(self, acc: Access, header: list[str], rows: list[list[str]], mapping: Mapping[str, str],
                 mode: str = "create", keys: list[str] | None = None, batch_id: int | None = None,
                 drop_invalid: list[str] | None = None, workers: int | None = None) -> None:
        self.workers = default_workers() if workers is None else workers
        self.acc, self.header, self.rows, self.mapping = acc, header, rows, dict(mapping)
        self.mode, self.keys, self.batch_id = mode, list(keys or []), batch_id
        self.drop_invalid = frozenset(drop_invalid or ())
        check_mapping(header, self.mapping, mode, self.keys, list(self.drop_invalid))
        self.seen: dict[str, int] = {}
        self.stages: set[str] = set()
        self.orgs: dict[str, int | None] = {}
        self.writable: set[frozenset[str]] = set()  # field sets check_write has let through
        self.blank_custom: dict[str, Any] | None = None  # a new person's custom values when the row sets none

    async def _prepare(self, s: Standardized) -> RowResult | _Pending:
        """The rest of a standardized row's plan, in file order: its organization, custom fields and write
        rights checked, a repeat of an earlier row's key skipped; a result if it is final. A bad value of a
        field in ``drop_invalid`` is dropped with a warning instead of failing the row."""
        if s.final is not None:
            return RowResult(s.row_no, s.final[0], message=s.final[1])
        raw, bad, clean, row_no = s.raw, dict(s.bad), s.clean, s.row_no
        try:
            texts = dict(s.custom_text)
            custom = await self._custom_all(texts, bad) if texts else {}  # takes the bad ones out of texts
            written = frozenset(raw).union(texts).difference(("region",))
            if written not in self.writable:  # the same columns on every row: ask the policy once
                await self.acc.check_write(PERSON_MODEL, [k for k in raw if k != "region"] + list(texts))
                self.writable.add(written)
        except CrmError as exc:
            fields = getattr(exc, "fields", None)
            return RowResult(row_no, "failed", message=_reasons({**bad, **fields}) if fields else exc.message)
        failing = {k: v for k, v in bad.items() if k not in self.drop_invalid}
        if failing or clean is None:
            return RowResult(row_no, "failed", message=_reasons(bad))
        warning = _reasons(bad) if bad else ""
        for key in ("email_key", "phone"):
            if clean.get(key):
                first = self.seen.setdefault(f"{key}:{clean[key]}", row_no)
                if first != row_no:
                    return RowResult(row_no, "skipped",
                                     message=N_("duplicate of row %(row)s in this file") % {"row": first})
        return _Pending(row_no, raw, clean, s.tags, s.note, s.company, s.record_id, custom=custom, warning=warning)

    async def _resolve_orgs(self, names: set[str]) -> None:
        """The organizations a chunk names, looked up at once among those the importing user may read (a
        reference is checked like a read); missing ones are created when their rows are written."""
        from crm_contacts.models import Organization

        wanted = [n for n in names if n and n not in self.orgs]
        if not wanted:
            return
        found: dict[str, int] = {}
        if self.acc.can("crm_contacts.organization"):
            mine = await self.acc.select(Organization, "crm_contacts.organization", Organization.id,
                                         Organization.name, where=any_of(Organization.name, wanted))
            for row in await mine.order_by(Organization.id):
                found.setdefault(row["name"], int(row["id"]))
        for name in wanted:
            self.orgs[name] = found.get(name)

    async def _custom_all(self, texts: dict[str, str], bad: dict[str, str]) -> dict[str, Any]:
        """The row's checked custom values; bad ones taken out of ``texts`` and named in ``bad``."""
        try:
            return await _custom_values(self.acc, texts)
        except ValidationError as exc:
            bad.update(exc.fields)
            for k in exc.fields:
                texts.pop(k, None)
            return await _custom_values(self.acc, texts) if texts else {}

    async def _match(self, pending: list[_Pending]) -> None:
        """Find each row's existing person for the whole chunk: one query, then the keys in their order."""
        from crm_contacts.models import Person

        keys = self.keys if self.mode != "create" else ["email", "phone"]
        columns = {"email": Person.email_key, "phone": Person.phone, "id": Person.id}
        names = {key: column._meta.name for key, column in columns.items()}

        def value(p: _Pending, key: str) -> Any:
            return p.record_id if key == "id" else p.clean.get(names[key])

        clause: Any = None
        for key in keys:
            values = list({v for p in pending if (v := value(p, key)) not in (None, "")})
            if values:
                found = any_of(columns[key], values)
                clause = found if clause is None else clause | found
        if clause is None:
            return
        rows = await Person.select().where((Person.is_archived == False) & clause).output(  # noqa: E712
            load_json=True)
        for key in keys:
            wanted = {v: p for p in pending if p.existing is None and (v := value(p, key)) not in (None, "")}
            for row in rows:
                p = wanted.get(row[names[key]])
                if p is not None and p.existing is None:
                    p.existing = dict(row)

    async def _decide(self, p: _Pending) -> RowResult | None:
        """The final outcome of a matched row, or None when it is to be written."""
        from crm_contacts.cleaning import clean_person
        from crm_contacts.duplicates import DuplicateCandidate, scoped

        if self.mode == "create" and p.existing is not None:
            # the report names the existing record only to a user who may open it
            visible = await scoped(self.acc, PERSON_MODEL, [DuplicateCandidate(int(p.existing["id"]), "", 1.0, ())])
            if not visible.visible:
                return RowResult(p.row_no, "skipped", message=N_("this person exists already outside your records"))
            return RowResult(p.row_no, "skipped", record_id=p.existing["id"],
                             message=N_("a person with this email or phone exists"))
        if self.mode == "update" and p.existing is None:
            return RowResult(p.row_no, "skipped", message=N_("no person matches the keys"))
        try:
            if p.existing is not None:
                await self.acc.get(_person(), PERSON_MODEL, p.existing["id"], action="update")
                if p.custom:  # the fields the row sets, merged into those stored (search text from both)
                    p.raw["custom"] = customfields.merge(PERSON_MODEL, p.existing.get("custom"),
                                                         {"custom": p.custom})["custom"]
                p.clean = await clean_person(p.raw, p.existing, stages=self.stages, org_name=p.company)
            elif p.custom:  # a new person: the custom fields' defaults and required ones
                p.clean["custom"] = (await customfields.prepare(self.acc, PERSON_MODEL, {"custom": p.custom},
                                                                creating=True))["custom"]
            else:  # no custom cell: the defaults, the same for every row of the chunk
                if self.blank_custom is None:
                    self.blank_custom = (await customfields.prepare(self.acc, PERSON_MODEL, {"custom": {}},
                                                                    creating=True))["custom"]
                p.clean["custom"] = dict(self.blank_custom)
        except CrmError as exc:
            fields = getattr(exc, "fields", None)
            return RowResult(p.row_no, "failed", message="; ".join(f"{k}: {v}" for k, v in fields.items())
                             if fields else exc.message)
        if p.company:
            p.clean["organization"] = self.orgs.get(p.company)
        return None

    async def _write_chunk(self, todo: list[_Pending], after: asyncio.Future[Any] | None = None) -> list[RowResult]:
        """New people in one INSERT, updates one by one, all in one transaction (committed once ``after``, the
        previous chunk's write, is done: chunks commit in file order even when written side by side)."""
        from core.timeline import notes
        from crm_contacts.models import ImportRow, Person
        from crm_contacts.services import set_tags

        p0 = self.acc.principal
        uid = p0.user_id if p0 and p0.user_id > 0 else None  # the CLI acts as user 0, which owns nothing
        team = next(iter(p0.team_ids)) if p0 and len(p0.team_ids) == 1 else None
        out: list[RowResult] = []
        async with db.atomic():
            for p in todo:  # the plan may predate the organization: an earlier chunk's write made it since
                if p.company:
                    if self.orgs.get(p.company) is None:
                        self.orgs[p.company] = await _org_id(p.company, self.acc, dry_run=False)
                    p.clean["organization"] = self.orgs[p.company]
            new = [p for p in todo if p.existing is None]
            ids = await copy_rows(Person, [{"owner": uid, "team": team, **p.clean, "import_batch": self.batch_id}
                                             for p in new])
            for p, person_id in zip(new, ids, strict=True):
                out.append(RowResult(p.row_no, "created", person_id, p.warning))
            befores: dict[int, dict[str, Any]] = {}
            afters: dict[int, dict[str, Any]] = {}
            audited: dict[object, dict[str, Any]] = {}
            for p in todo:
                if p.existing is not None:
                    record_id = int(p.existing["id"])
                    befores[p.row_no] = _plain({k: p.existing.get(k) for k in p.clean})
                    afters[p.row_no] = _plain(p.clean)
                    await Person.update({**{Person._meta.get_column_by_name(k): v for k, v in p.clean.items()},
                                         Person.version: Person.version + 1}).where(Person.id == record_id)
                    out.append(RowResult(p.row_no, "updated", record_id, p.warning))
                    audited[record_id] = audit.diff(befores[p.row_no], afters[p.row_no])
            # each record audited as a single write would be (one INSERT for the chunk), in its transaction
            detail = f"import {self.batch_id}" if self.batch_id is not None else "import"
            await audit.record_many("create", model=PERSON_MODEL, principal=self.acc.principal, detail=detail,
                                    changes={i: _created(p.clean) for p, i in zip(new, ids, strict=True)})
            await audit.record_many("update", model=PERSON_MODEL, principal=self.acc.principal, detail=detail,
                                    changes=audited)
            if ids and await _listened("crm_contacts_person_created"):
                for person_id in ids:
                    await hooks.publish("crm_contacts_person_created", person_id=int(person_id))
            for p in todo:
                if p.existing is not None:
                    before = p.existing
                    await events.updated("person", [int(before["id"])],
                                         [k for k in p.clean if before.get(k) != p.clean[k]])
            record_of = {r.row_no: r.record_id for r in out if r.record_id is not None}  # all: written just now
            for p in todo:
                if p.tags:
                    await set_tags(self.acc, PERSON_MODEL, [record_of[p.row_no]], add=p.tags)
            await notes.add_imported(PERSON_MODEL, [(record_of[p.row_no], p.note) for p in todo if p.note], uid)
            if self.batch_id is not None:
                await insert_rows(ImportRow, [{"batch": self.batch_id, "row_no": r.row_no, "action": r.action,
                                               "record_id": r.record_id, "before": befores.get(r.row_no, {}),
                                               "after": afters.get(r.row_no, {}), "message": r.message[:2000]}
                                              for r in out])
            await _done(after)
        return out

    async def row(self, row_no: int, raw_row: list[str], dry_run: bool) -> RowResult:
        """Import (or check) a single row on its own."""
        return (await self._chunk([(row_no, raw_row)], dry_run, single=True))[0]

    async def _chunk(self, items: list[tuple[int, list[str]]], dry_run: bool, single: bool = False) -> list[RowResult]:
        return await self._write(items, *await self._plan(items, dry_run), single=single)

    async def _spec(self) -> Spec:
        from crm_contacts.models import Stage

        if not self.stages:
            self.stages = {r["key"] for r in await Stage.select(Stage.key)}
        return Spec(self.header, self.mapping, self.mode, frozenset(self.stages))

    async def _plan(self, items: list[tuple[int, list[str]]], dry_run: bool,
                    standardized: list[Standardized] | None = None) -> tuple[dict[int, RowResult], list[_Pending]]:
        """Standardize (unless a worker did), match and decide a chunk: the final results so far, and the rows
        left to write."""
        if standardized is None:
            spec = await self._spec()
            standardized = []
            for n, (row_no, raw_row) in enumerate(items, start=1):
                standardized.append(standardize_row(spec, row_no, raw_row))
                if n % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # let the previous chunk's write talk to the database meanwhile
        await self._resolve_orgs({s.company for s in standardized})
        results: dict[int, RowResult] = {}
        pending: list[_Pending] = []
        for n, s in enumerate(standardized, start=1):
            if n % PLAN_YIELD_EVERY == 0:
                await asyncio.sleep(0)
            prepared = await self._prepare(s)
            if isinstance(prepared, RowResult):
                results[s.row_no] = prepared
            else:
                pending.append(prepared)
        self.blank_custom = None  # the custom fields may have changed since the last chunk
        await self._match(pending)
        todo: list[_Pending] = []
        for n, p in enumerate(pending, start=1):
            if n % PLAN_YIELD_EVERY == 0:
                await asyncio.sleep(0)
            decided = await self._decide(p)
            if decided is not None:
                results[p.row_no] = decided
            elif dry_run:
                results[p.row_no] = RowResult(p.row_no, "updated" if p.existing else "created",
                                              p.existing["id"] if p.existing else None, p.warning, values=p.clean)
            else:
                todo.append(p)
        return results, todo

    async def _write(self, items: list[tuple[int, list[str]]], results: dict[int, RowResult], todo: list[_Pending],
                     single: bool = False, after: asyncio.Future[Any] | None = None) -> list[RowResult]:
        if todo:
            known = dict(self.orgs)
            try:
                for r in await self._write_chunk(todo, after):
                    results[r.row_no] = r
            except Exception as exc:
                for name, org_id in list(self.orgs.items()):  # made in the rolled-back transaction: gone
                    if known.get(name) != org_id:
                        self.orgs[name] = None
                if single:
                    results[todo[0].row_no] = RowResult(todo[0].row_no, "failed",
                                                        message=f"{type(exc).__name__}: {exc}"[:500])
                else:  # pin the failure on its row: redo this chunk one row at a time
                    await _done(after)  # (each row commits on its own: after the previous chunk)
                    raw = dict(items)
                    for p in todo:
                        results[p.row_no] = (await self._chunk([(p.row_no, raw[p.row_no])], False, single=True))[0]
        return [results[row_no] for row_no, _ in items]

    async def run(self, dry_run: bool = False, start: int = 0,
                  progress: Callable[[int, int], Any] | None = None) -> list[RowResult]:
        """Chunk after chunk, the next one planned while the database writes the previous ones: up to ``WRITES``
        chunks side by side, each on its own connection, but each commits only once the one before it is done,
        so chunks still commit in file order and a resumed run knows where to go on.

        From ``PARALLEL_FROM`` rows on, the chunks are standardized ahead in ``workers`` processes; the rest of
        the plan (organizations, custom fields, rights, repeated keys, matching) stays here, in file order."""
        await self.acc.require(PERSON_MODEL, "update" if self.mode == "update" else "create")
        await db.ensure_loop_pool()  # PostgreSQL: a connection per chunk and per look-up otherwise
        out: list[RowResult] = []
        numbered = list(enumerate(self.rows, start=2))[start:]  # row 1 is the header
        large = len(numbered) >= self.PARALLEL_FROM
        if large:
            _collect_less(True)
        executor = pool(self.workers) if self.workers > 1 and len(numbered) >= self.PARALLEL_FROM else None
        size = self.CHUNK if executor is None else self.PARALLEL_CHUNK
        chunks = [numbered[at: at + size] for at in range(0, len(numbered), size)]
        ahead: deque[asyncio.Future[list[Standardized]]] = deque()
        writing: deque[tuple[asyncio.Task[list[RowResult]], bool]] = deque()  # (write, written alone)
        # SQLite has one writer at a time: a second transaction would hold its lock while waiting for the first
        side_by_side = self.WRITES if db.is_postgres() else 1
        try:
            spec = await self._spec()
            for n, chunk in enumerate(chunks):
                standardized = None
                if executor is not None:
                    while len(ahead) < 2 * self.workers and n + len(ahead) < len(chunks):
                        ahead.append(asyncio.wrap_future(executor.submit(standardize_chunk, spec,
                                                                         chunks[n + len(ahead)])))
                    standardized = await ahead.popleft()
                planned = await self._plan(chunk, dry_run, standardized)
                alone = self._alone(planned[1])
                while writing and (len(writing) >= side_by_side or alone or writing[-1][1]):
                    out.extend(await writing.popleft()[0])
                after = writing[-1][0] if writing else None
                writing.append((asyncio.create_task(self._settle(chunk, planned, dry_run, start + n * size,
                                                                 progress, after)), alone))
            while writing:
                out.extend(await writing.popleft()[0])
        finally:
            for task, _ in writing:
                task.cancel()
            if executor is not None:
                executor.shutdown(wait=False, cancel_futures=True)
            if large:
                _collect_less(False)
        return out

    def _alone(self, todo: list[_Pending]) -> bool:
        """Whether a chunk is written alone, neither beside the previous chunk nor the next: when it creates
        organizations, updates people or writes tags or notes. Two transactions side by side would race for
        the same new organization or tag (the second failing on it, or referring to one not yet committed) or
        update the same person; new people alone, the common case of a large import, share nothing."""
        return any(p.existing is not None or p.tags or p.note or (p.company and self.orgs.get(p.company) is None)
                   for p in todo)

    async def _settle(self, chunk: list[tuple[int, list[str]]], planned: tuple[dict[int, RowResult], list[_Pending]],
                      dry_run: bool, at: int, progress: Callable[[int, int], Any] | None,
                      after: asyncio.Future[Any] | None = None) -> list[RowResult]:
        """Write one planned chunk (once ``after``, the previous chunk's, is done: see ``run``), record its
        skipped and failed rows, report progress."""
        from crm_contacts.models import ImportRow

        results = await self._write(chunk, *planned, after=after)
        await _done(after)
        finals = [r for r in results if r.action in ("skipped", "failed")]
        if not dry_run and self.batch_id is not None:
            await insert_rows(ImportRow, [{"batch": self.batch_id, "row_no": r.row_no, "action": r.action,
                                           "record_id": r.record_id, "message": r.message[:2000]}
                                          for r in finals])
        if progress:
            await _maybe(progress(at + len(chunk), len(self.rows)))
        return results


_less: dict[str, Any] = {"runs": 0, "threshold": gc.get_threshold()}
_less_lock = threading.Lock()


def _collect_less(start: bool) -> None:
    """A large import makes millions of small objects that live a chunk long, next to the file's rows: the
    garbage collector's default pace (every 700 allocations, each surviving chunk object scanned again and
    again) cost ~20 µs a row of the importing process (measured at 20k rows: 92 → 64-74 µs). During the run the
    rows are frozen out of its reach (also shared, not copied, by the forked workers) and young objects
    collected every 100,000 allocations; both undone when the last import of the process ends."""
    with _less_lock:
        _less["runs"] += 1 if start else -1
        if start and _less["runs"] == 1:
            _less["threshold"] = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(100_000, 20, 10)
        elif not start and _less["runs"] == 0:
            gc.set_threshold(*_less["threshold"])
            gc.unfreeze()


async def _done(task: asyncio.Future[Any] | None) -> None:
    """Wait until ``task`` has finished, however it ended (its own awaiter sees its error)."""
    if task is not None and not task.done():
        await asyncio.wait([task])


def _reasons(bad: Mapping[str, str]) -> str:
    """A row's bad values in one line, "phone: …; email: …" (translated part by part where it is shown). On a row
    that was imported, they are the values left out."""
    return "; ".join(f"{k}: {v}" for k, v in bad.items())


async def _custom_values(acc: Access, texts: Mapping[str, str]) -> dict[str, Any]:
    """A row's custom field cells (``custom.<key>`` → text) as checked values (kinds, links); 422 naming each."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, text in texts.items():
        fd = customfields.by_name(PERSON_MODEL, name)
        if fd is None:
            errors[name] = "is not a field of people"
            continue
        try:
            values[fd.key] = customfields.from_text(fd, text)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError(errors)
    if not values:
        return {}
    return dict((await customfields.prepare(acc, PERSON_MODEL, {"custom": values}, creating=False))["custom"])


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values as JSON keeps them (dates as ISO text…): what ImportRow stores and a revert compares with."""
    out: dict[str, Any] = jsontext.plain(dict(values))
    return out


def _created(values: Mapping[str, Any]) -> dict[str, Any]:
    """``audit.diff(None, values)`` once stored: the audit log writes the values as JSON (dates as text, as
    ``diff`` does), so they are not made plain here first — one JSON encoding a row instead of three."""
    return {k: [None, v] for k in sorted(values) if (v := values[k]) is not None}


async def _listened(event: str) -> bool:
    """Whether publishing ``event`` reaches anyone (an addon's implementation of the hook, a webhook
    subscription): asked once a chunk, so an import nobody listens to spends nothing a person on it."""
    from core.runtime import current
    from core.webhooks.events import listeners

    caller = getattr(current().plugins.hook, event, None)
    return bool(caller is not None and caller.get_hookimpls()) or bool(await listeners(event))


async def _maybe(value: Any) -> None:
    import inspect

    if inspect.isawaitable(value):
        await value


def _person() -> Any:
    from crm_contacts.models import Person

    return Person


async def run_batch(acc: Access, batch_id: int, progress: Callable[[int, int], Any] | None = None) -> dict[str, int]:
    """Run (or resume) a stored import; idempotent: a finished batch is left as it is."""
    from crm_contacts.models import ImportBatch, ImportRow

    batch = await ImportBatch.select().where(ImportBatch.id == batch_id).first()
    if batch is None or batch["status"] in ("done", "reverted"):
        return {}
    header, rows = read_table(batch["content"], batch["filename"], batch["encoding"] or None)
    last = await ImportRow.select(ImportRow.row_no).where(ImportRow.batch == batch_id).order_by(
        ImportRow.row_no, ascending=False).first()
    start = max(0, int(last["row_no"]) - 1) if last else 0
    mapping = batch["mapping"] if isinstance(batch["mapping"], dict) else json.loads(batch["mapping"])
    keys = batch["keys"] if isinstance(batch["keys"], list) else json.loads(batch["keys"])
    drop = batch["drop_invalid"]
    drop = drop if isinstance(drop, list) else json.loads(drop or "[]")
    importer = Importer(acc, header, rows, mapping, batch["mode"], keys, batch_id, drop_invalid=drop)
    await ImportBatch.update({ImportBatch.status: "running", ImportBatch.total: len(rows)}).where(
        ImportBatch.id == batch_id)

    async def tick(done: int, total: int) -> None:
        await ImportBatch.update({ImportBatch.done: done}).where(ImportBatch.id == batch_id)
        if progress:
            await _maybe(progress(done, total))

    await importer.run(start=start, progress=tick)
    counts = await batch_counts(batch_id)
    await ImportBatch.update({ImportBatch.status: "done", ImportBatch.done: len(rows),
                              ImportBatch.finished_at: dt.datetime.now(dt.UTC),
                              **{ImportBatch._meta.get_column_by_name(k): v for k, v in counts.items()}}).where(
        ImportBatch.id == batch_id)
    await audit.record("import", model=PERSON_MODEL, record_id=batch_id, principal=acc.principal,
                       detail=f"{batch['filename']}: {counts}")
    return counts


async def batch_counts(batch_id: int) -> dict[str, int]:
    from crm_contacts.models import ImportRow

    counts = {"created": 0, "updated": 0, "skipped": 0, "failed": 0}
    for row in await ImportRow.select(ImportRow.action).where(ImportRow.batch == batch_id):
        counts[row["action"]] = counts.get(row["action"], 0) + 1
    return counts


async def report_csv(batch_id: int) -> bytes:
    """The per-row result of an import as CSV (row, action, record id, message)."""
    from crm_contacts.models import ImportRow

    rows = await ImportRow.select(ImportRow.row_no, ImportRow.action, ImportRow.record_id, ImportRow.message).where(
        ImportRow.batch == batch_id).order_by(ImportRow.row_no)
    return write_csv(["row", "result", "record_id", "message"],
                     [[r["row_no"], r["action"], r["record_id"] or "", r["message"]] for r in rows])


async def revert(acc: Access, batch_id: int) -> dict[str, int]:
    """Undo a finished import: archive what it created, restore what it updated; each record audited.

    A field is restored only while it still holds the value the import wrote: one changed since (by hand, by
    a later import) is kept and reported as a conflict on its row, so a revert never overwrites later work.
    """
    from crm_contacts.models import ImportBatch, ImportRow, Person

    batch = await acc.get(ImportBatch, "crm_contacts.import", batch_id, action="update")
    if batch["status"] != "done":
        raise ValidationError({"status": N_("only a finished import can be reverted (this one is %(state)s)") % {
            "state": batch["status"]}})
    archived = restored = conflicts = 0
    detail = f"revert of import {batch_id}"
    async with db.atomic():
        for row in await ImportRow.select().where((ImportRow.batch == batch_id) & ImportRow.action.is_in(
                ["created", "updated"])).order_by(ImportRow.row_no, ascending=False):
            if row["action"] == "created":
                await Person.update({Person.is_archived: True, Person.version: Person.version + 1}).where(
                    Person.id == row["record_id"])
                await audit.record("archive", model=PERSON_MODEL, record_id=row["record_id"], detail=detail,
                                   principal=acc.principal)
                await events.updated("person", [int(row["record_id"])], ["is_archived"])
                archived += 1
                continue
            now, values, kept = await _revertible(row)
            if values:
                restore = dict(values)
                if restore.get("birth_date"):
                    restore["birth_date"] = dt.date.fromisoformat(str(restore["birth_date"])[:10])
                restore |= await _derived(int(row["record_id"]), restore)
                await Person.update({**{Person._meta.get_column_by_name(k): v for k, v in restore.items()},
                                     Person.version: Person.version + 1}).where(Person.id == row["record_id"])
                await audit.record("update", model=PERSON_MODEL, record_id=row["record_id"], detail=detail,
                                   changes=audit.diff({k: now.get(k) for k in values}, values), principal=acc.principal)
                await events.updated("person", [int(row["record_id"])], restore)
                restored += 1
            if kept:
                conflicts += 1
                await ImportRow.update({ImportRow.message: "not reverted, changed since the import: "
                                                           + ", ".join(kept)}).where(ImportRow.id == row["id"])
        await ImportBatch.update({ImportBatch.status: "reverted"}).where(ImportBatch.id == batch_id)
        await audit.record("revert", model="crm_contacts.import", record_id=batch_id, principal=acc.principal,
                           detail=f"archived {archived} created, restored {restored} updated, "
                                  f"{conflicts} with fields changed since (kept)")
    return {"archived": archived, "restored": restored, "conflicts": conflicts}


_DERIVED = ("updated_at", "search_text")  # recomputed from the restored fields, not restored themselves


async def _revertible(row: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(current values, field → value to restore, fields kept) of a record an import updated: the fields it
    changed that still hold what it wrote are restored, those changed since are kept. (Rows recorded before
    ``after`` existed restore every field, as before.)"""
    from crm_contacts.models import Person

    before, after = (v if isinstance(v, dict) else json.loads(v or "{}") for v in (row["before"], row["after"]))
    changed = [k for k in before if k not in _DERIVED and (not after or before[k] != after.get(k))]
    if not changed:
        return {}, {}, []
    current = await Person.select(*[Person._meta.get_column_by_name(k) for k in changed]).where(
        Person.id == row["record_id"]).output(load_json=True).first()  # custom fields: a dict, as imported
    if current is None:
        return {}, {}, changed
    now = _plain(current)
    restore = {k: before[k] for k in changed if not after or now.get(k) == after.get(k)}
    return now, restore, [k for k in changed if k not in restore]


async def _derived(person_id: int, restore: Mapping[str, Any]) -> dict[str, Any]:
    """``search_text`` and ``updated_at`` of the person once ``restore`` is written (derived, never restored)."""
    from crm_contacts.cleaning import clean_person
    from crm_contacts.models import Person

    row = await Person.select().where(Person.id == person_id).first()
    try:
        return await clean_person({}, before={**(row or {}), **restore})
    except ValidationError:  # e.g. its stage was deleted since: the record keeps its search text
        return {"updated_at": dt.datetime.now(dt.UTC)}
