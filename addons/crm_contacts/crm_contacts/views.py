"""HTML pages of crm_contacts: lists, the 360° page, forms, bulk actions, export. ``ROUTES`` at the end."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import customfields, db, hooks, records
from core.automation import record_changed
from core.errors import NotFound, ValidationError
from core.i18n import N_
from core.list_pages import is_custom_param
from core.security import audit
from core.timeline import feed
from core.web import access, render
from crm_contacts import events as contact_events
from crm_contacts import listing
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL
from crm_contacts.labels import FIELD_LABELS, LANGUAGE_LABELS
from crm_contacts.services import table_of, tags_of

KINDS = {"people": PERSON_MODEL, "organizations": ORGANIZATION_MODEL}
FORM_FIELDS = {
    PERSON_MODEL: ("name", "organization", "job_title", "email", "phone", "country", "region", "language", "stage",
                   "source", "industry", "birth_date"),
    ORGANIZATION_MODEL: ("name", "tax_id", "industry", "website", "email", "phone", "country", "region", "stage",
                         "source"),
}
EXPORT_FIELDS = {
    PERSON_MODEL: ("id", "name", "organization.name", "job_title", "email", "phone", "country", "province", "city",
                   "stage", "source", "language", "created_at"),
    ORGANIZATION_MODEL: ("id", "name", "tax_id", "industry", "email", "phone", "country", "province", "city", "stage",
                         "source", "created_at"),
}


def _model(request: Request) -> str:
    kind = request.path_params.get("kind", "people")
    if kind not in KINDS:
        raise NotFound(N_("no page /contacts/%(kind)s") % {"kind": kind})
    return KINDS[kind]


def _columns(model: str) -> list[Any]:
    table = table_of(model)
    names = ("name", "email", "phone", "stage", "province", "city", "created_at")
    cols = [table._meta.get_column_by_name(n) for n in names] + [table.owner.name]
    if model == PERSON_MODEL:
        cols += [table.organization, table.organization.name, table.job_title]
    else:
        cols += [table.tax_id, table.industry]
    return cols


async def list_page(request: Request) -> Response:
    """Search, filters, sort, keyset pages, saved filters and bulk actions."""
    from crm_contacts.models import SavedFilter, Stage, Tag

    acc = access(request)
    model = _model(request)
    lq = listing.parse(request.query_params)
    await customfields.fresh()
    listed = customfields.visible(acc, model, listed=True)  # custom fields shown as columns
    columns = _columns(model) + ([table_of(model).custom] if listed else [])
    rows, nxt = await listing.fetch(acc, model, lq, columns)
    rows = [{**r, **customfields.cells(listed, r.get("custom"))} for r in rows] if listed else rows
    clear = [f for f in customfields.visible(acc, model) if not acc.is_masked(model, f.name)]
    saved = await (await acc.select(SavedFilter, "crm_contacts.saved_filter", SavedFilter.id, SavedFilter.name,
                                    SavedFilter.query, where=SavedFilter.model == model)).order_by(SavedFilter.name)
    stages = await Stage.select().order_by(Stage.sequence)
    return await render(request, "crm_contacts/list.html", rows=rows, lq=lq, next=nxt, model=model,
                  kind=request.path_params.get("kind", "people"), saved=saved, stages=stages,
                  stage_labels={s["key"]: s["label"] for s in stages}, tags=await Tag.select().order_by(Tag.name),
                  can_create=acc.can(model, "create"), can_export=acc.can(model, "export"),
                  can_update=acc.can(model, "update"), listed=listed,
                  custom_filters=[f for f in clear if f.is_filterable],
                  custom_sorts=[f for f in clear if f.is_listed and f.kind in customfields.SORTABLE])


async def saved_filter_create(request: Request) -> Response:
    from crm_contacts.models import SavedFilter

    acc = access(request)
    await acc.require("crm_contacts.saved_filter", "create")
    form = await request.form()
    name = str(form.get("name", "")).strip()[:100]
    if not name:
        raise ValidationError({"name": N_("is required")})
    model = _model(request)
    await SavedFilter.insert(SavedFilter(name=name, model=model, query=str(form.get("query", ""))[:2000],
                                         owner=acc.principal.user_id if acc.principal else None))
    return RedirectResponse(f"/contacts/{request.path_params['kind']}?{form.get('query', '')}", status_code=303)


async def export(request: Request) -> Response:
    """CSV or XLSX of the filtered list (or the selected ids), masked as the user sees it; audited."""
    from crm_contacts.tabular import write_csv, write_xlsx

    acc = access(request)
    model = _model(request)
    params = dict(request.query_params)
    if request.method == "POST":
        form = await request.form()
        params = {"ids": ",".join(str(v) for v in form.getlist("ids")), "format": str(form.get("format", "csv"))}
    fmt = params.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        raise ValidationError({"format": N_("must be csv or xlsx")})
    table = table_of(model)
    names = EXPORT_FIELDS[model]
    cols = [table.organization.name if n == "organization.name" else table._meta.get_column_by_name(n) for n in names]
    lq = listing.parse({k: v for k, v in params.items() if k in listing.FILTER_KEYS or is_custom_param(k)})
    await customfields.fresh()
    exported = customfields.visible(acc, model)  # every custom field the user sees, masked as they see it
    if exported:
        cols.append(table.custom)
    extra = None
    if params.get("ids"):
        extra = table.id.is_in([int(i) for i in params["ids"].split(",") if i.strip().isdigit()] or [-1])
    filters = await listing.where(table, model, lq, acc)
    clause = extra if filters is None else filters if extra is None else filters & extra
    query = await acc.select(table, model, *cols, where=clause, action="export")
    rows = [acc.present(model, dict(r)) for r in await query.order_by(table.id).limit(100_000)]
    body = [[r.get(n, "") for n in names] + list(customfields.cells(exported, r.get("custom")).values())
            for r in rows]
    names = (*names, *(f.name for f in exported))
    await audit.record("export", model=model, detail=f"{len(rows)} rows as {fmt}; filter {lq.querystring()}")
    stamp = dt.date.today().isoformat()
    kind = request.path_params["kind"]
    if fmt == "xlsx":
        return Response(write_xlsx(names, body, kind), headers={
            "Content-Disposition": f'attachment; filename="{kind}-{stamp}.xlsx"'},
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    return Response(write_csv(names, body), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{kind}-{stamp}.csv"'})


async def bulk(request: Request) -> Response:
    """Bulk tag / assign owner / change stage / export on selected rows (each checked for update)."""
    from crm_contacts.services import bulk_update, set_tags

    acc = access(request)
    model = _model(request)
    form = await request.form()
    ids = [int(str(v)) for v in form.getlist("ids") if str(v).isdigit()]
    action = str(form.get("action", ""))
    value = str(form.get("value", "")).strip()
    if not ids:
        raise ValidationError({"ids": N_("select at least one row")})
    if action == "export":
        return await export(request)
    if action == "tag":
        table = table_of(model)
        for record_id in ids:
            await acc.get(table, model, record_id, action="update")
        await set_tags(acc, model, ids, add=[value])
        await audit.record("update", model=model, detail=f"bulk tag {value!r} on {len(ids)} records")
    elif action == "stage":
        await bulk_update(acc, model, ids, {"stage": value})
    elif action == "owner":
        if not value.isdigit():
            raise ValidationError({"value": N_("must be a user id")})
        await bulk_update(acc, model, ids, {"owner": int(value)})
    else:
        raise ValidationError({"action": N_("must be tag, stage, owner or export")})
    return RedirectResponse(f"/contacts/{request.path_params['kind']}?{form.get('query', '')}", status_code=303)


async def detail(request: Request) -> Response:
    """The 360° page: header, key facts, panels and a timeline from every installed addon."""
    from crm_contacts.models import Person, Stage

    acc = access(request)
    model = _model(request)
    table = table_of(model)
    record_id = int(request.path_params["id"])
    raw = await acc.get(table, model, record_id, include_archived=True)
    if raw.get("merged_into"):
        return RedirectResponse(f"/contacts/{request.path_params['kind']}/{raw['merged_into']}?from={record_id}",
                                status_code=303)
    row = acc.present(model, raw)
    found = await records.extras(acc, model, record_id)
    record_timeline = await feed.build(acc, model, record_id, url=request.url.path)
    org = members = None
    if model == PERSON_MODEL and raw.get("organization"):
        org = await table_of(ORGANIZATION_MODEL).select().where(
            table_of(ORGANIZATION_MODEL).id == raw["organization"]).first()
    if model == ORGANIZATION_MODEL:
        members = await (await acc.select(Person, PERSON_MODEL, Person.id, Person.name, Person.job_title,
                                          where=Person.organization == record_id)).limit(200)
    masked = [f for f in ("phone", "email") if acc.is_masked(model, f)]
    from core.i18n import language
    from crm_contacts.countries import country_name

    country = country_name(row["country"], language()) if row.get("country") else ""
    return await render(request, "crm_contacts/detail.html", row=row, model=model, kind=request.path_params["kind"],
                        country=country,
                  panels=found.panels, actions=found.actions, record_timeline=record_timeline, org=org,
                  members=members,
                  tags=await tags_of(model, record_id), masked=masked, can_update=acc.can(model, "update"),
                  merged_from=request.query_params.get("from"), languages=LANGUAGE_LABELS,
                  custom=await customfields.shown(acc, model, row.get("custom")),
                  stage_labels={s["key"]: s["label"] for s in await Stage.select(Stage.key, Stage.label)})


async def reveal(request: Request) -> Response:
    acc = access(request)
    model = _model(request)
    field = str((await request.form()).get("field", ""))
    if field not in ("phone", "email"):
        raise ValidationError({"field": N_("must be phone or email")})
    value = await acc.reveal(table_of(model), model, int(request.path_params["id"]), field)
    return await render(request, "crm_contacts/revealed.html", field=FIELD_LABELS[field], value=value,
                  back=f"/contacts/{request.path_params['kind']}/{request.path_params['id']}")


async def form_page(request: Request) -> Response:
    """Create or edit; warns with duplicate candidates before creating one (confirm to go on)."""
    from crm_contacts.cleaning import clean_organization, clean_person
    from crm_contacts.duplicates import organization_candidates, person_candidates, scoped
    from crm_contacts.models import Stage

    acc = access(request)
    model = _model(request)
    table = table_of(model)
    record_id = request.path_params.get("id")
    before = await acc.get(table, model, int(record_id), action="update") if record_id else None
    if before is None:
        await acc.require(model, "create")
    values: dict[str, Any] = dict(before or {})
    errors: dict[str, str] = {}
    candidates: list[Any] = []
    outside_scope = 0
    typed_org = ""
    creating, typed = before is None, None
    # the form follows the model's layout (sections, order, fields that come later); custom fields included
    names = [n for g in customfields.arrange(model, FORM_FIELDS[model], creating=creating) for n in g.names]
    if request.method == "POST":
        form = typed = await request.form()
        values = {f: str(form.get(f, "")).strip() for f in FORM_FIELDS[model] if f in names}
        if model == PERSON_MODEL and "organization" in values:
            typed_org = values["organization"]
            try:
                values["organization"] = await _organization_id(acc, typed_org)
            except ValidationError as exc:
                errors = exc.fields
        if not values.get("birth_date"):
            values.pop("birth_date", None)
        try:
            if errors:
                raise ValidationError(errors)
            await acc.check_write(model, [k for k, v in values.items() if k != "region" and (
                before is None or str(v or "") != str(before.get(k) or ""))])
            custom_errors: dict[str, str] = {}
            try:
                values["custom"] = await _custom_values(acc, model, form, before)
                if creating:
                    on_form = [*names, *(f.name for f in customfields.definitions(model))]
                    customfields.check_required(model, values, on_form)
            except ValidationError as exc:
                custom_errors = exc.fields
            try:
                clean = await (clean_person if model == PERSON_MODEL else clean_organization)(values, before)
            except ValidationError as exc:
                raise ValidationError({**custom_errors, **exc.fields}) from None
            if custom_errors:
                raise ValidationError(custom_errors)
            find = person_candidates if model == PERSON_MODEL else organization_candidates
            found = await scoped(acc, model, await find(clean, exclude_id=int(record_id) if record_id else None))
            candidates, outside_scope = found.visible, found.outside_scope
            if before is None and (candidates or outside_scope) and not form.get("confirm"):
                raise ValidationError({"duplicates": N_("possible duplicates found: open them, or confirm to create")})
            async with db.atomic():
                if before is None:
                    clean.setdefault("owner", acc.principal.user_id if acc.principal else None)
                    row = table(_data={table._meta.get_column_by_name(k): v for k, v in clean.items()})
                    await row.save()
                    record_id = str(row.id)
                    await audit.record("create", model=model, record_id=row.id,
                                       changes=audit.diff(None, customfields.flat(model, clean)))
                    await record_changed(model, int(row.id), None, clean)
                    if model == PERSON_MODEL:
                        await hooks.publish("crm_contacts_person_created", person_id=int(row.id))
                else:
                    updated = await table.update({table._meta.get_column_by_name(k): v for k, v in clean.items()} | {
                        table.version: table.version + 1}).where(
                        (table.id == before["id"]) & (table.version == int(str(form.get("version", "0")) or 0))
                    ).returning(table.id)
                    if not updated:
                        raise ValidationError({"version": N_("someone else changed this record: reload it")})
                    await audit.record("update", model=model, record_id=before["id"], changes=audit.diff(
                        customfields.flat(model, {k: before.get(k) for k in clean}), customfields.flat(model, clean)))
                    await record_changed(model, int(before["id"]), before, clean)
                    await contact_events.updated(contact_events.kind_of(model), [int(before["id"])],
                                                 [k for k in clean if before.get(k) != clean[k]])
            return RedirectResponse(f"/contacts/{request.path_params['kind']}/{record_id}", status_code=303)
        except ValidationError as exc:
            errors = exc.fields
    org_names: list[str] = []
    if model == PERSON_MODEL:  # the organization is picked by name (suggestions: those this user can see)
        org_table = table_of(ORGANIZATION_MODEL)
        if typed_org or values.get("organization"):
            values["organization"] = typed_org or await _organization_name(values["organization"])
        if acc.can(ORGANIZATION_MODEL):
            org_names = [r["name"] for r in await (await acc.select(org_table, ORGANIZATION_MODEL, org_table.name)
                                                  ).order_by(org_table.name).limit(500)]
    stored = acc.present(model, {"custom": before.get("custom")})["custom"] if before else {}
    inputs = await customfields.inputs(acc, model, stored, creating=creating, typed=typed if errors else None)
    groups = customfields.arrange(model, [*FORM_FIELDS[model], *[i.name for i in inputs]], creating=creating)
    return await render(request, "crm_contacts/form.html", status=422 if errors else 200, values=values,
                        errors=errors, candidates=candidates, outside_scope=outside_scope, model=model,
                        kind=request.path_params["kind"], fields=[*FORM_FIELDS[model], *[i.name for i in inputs]],
                        record_id=record_id, groups=groups, custom_inputs={i.name: i for i in inputs},
                        required=customfields.layout(model).required if creating else frozenset(),
                        labels=FIELD_LABELS,
                        stages=await Stage.select().order_by(Stage.sequence), org_names=org_names)


async def _custom_values(acc: Any, model: str, form: Any, before: dict[str, Any] | None) -> dict[str, Any]:
    """The custom fields a form posted, checked like an API write (rights, kinds, links, defaults, required)
    and, on an edit, merged into those stored."""
    partial = customfields.parse(acc, model, form, creating=before is None)
    await acc.check_write(model, {"custom": partial})
    checked = await customfields.prepare(acc, model, {"custom": partial}, creating=before is None)
    if before is None:
        return dict(checked["custom"])
    return dict(customfields.merge(model, before.get("custom"), checked)["custom"])


async def _organization_id(acc: Any, typed: str) -> int | None:
    """The organization a person form names: by name as the user sees it (an id is accepted too)."""
    from crm_contacts.cleaning import clean_organization

    if not typed:
        return None
    org_table = table_of(ORGANIZATION_MODEL)
    if typed.isdigit():
        where = org_table.id == int(typed)
    else:
        where = org_table.name == (await clean_organization({"name": typed}))["name"]
    found = await (await acc.select(org_table, ORGANIZATION_MODEL, org_table.id, where=where)).order_by(
        org_table.id).first()
    if found is None:
        raise ValidationError({"organization": N_("no organization named %(name)s: create it first") % {
            "name": repr(typed[:100])}})
    return int(found["id"])


async def _organization_name(org_id: Any) -> str:
    org_table = table_of(ORGANIZATION_MODEL)
    row = await org_table.select(org_table.name).where(org_table.id == int(org_id)).first()
    return str(row["name"]) if row else ""


def _routes() -> list[BaseRoute]:
    from crm_contacts import views_dedup, views_import

    kind = "{kind:str}"
    return [
        Route("/", lambda r: RedirectResponse("/contacts/people", status_code=303), name="home"),
        *views_import.ROUTES,
        *views_dedup.ROUTES,
        Route(f"/{kind}", list_page, name="list"),
        Route(f"/{kind}/new", form_page, methods=["GET", "POST"], name="create"),
        Route(f"/{kind}/export", export, methods=["GET", "POST"], name="export"),
        Route(f"/{kind}/bulk", bulk, methods=["POST"], name="bulk"),
        Route(f"/{kind}/filters", saved_filter_create, methods=["POST"], name="filter_create"),
        Route(f"/{kind}/{{id:int}}", detail, name="detail"),
        Route(f"/{kind}/{{id:int}}/edit", form_page, methods=["GET", "POST"], name="edit"),
        Route(f"/{kind}/{{id:int}}/reveal", reveal, methods=["POST"], name="reveal"),
    ]


ROUTES = _routes()
