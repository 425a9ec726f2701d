"""Duplicate review: ranked groups from the scan, a field-by-field merge page, dismiss, scan on demand."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import db, jobs
from core.errors import ValidationError
from core.i18n import N_
from core.web import access, render
from crm_contacts.api import PERSON_MODEL
from crm_contacts.labels import FIELD_LABELS, LANGUAGE_LABELS
from crm_contacts.merging import fields_of, merge
from crm_contacts.services import table_of

DUPLICATE = "crm_contacts.duplicate"


def _ids(raw: Any) -> list[int]:
    return [int(i) for i in (json.loads(raw) if isinstance(raw, str) else raw or [])]


async def group_list(request: Request) -> Response:
    from crm_contacts.models import DuplicateGroup, Person

    acc = access(request)
    await acc.require(DUPLICATE, "read")
    groups = await DuplicateGroup.select().where(DuplicateGroup.status == "open").order_by(
        DuplicateGroup.score, ascending=False).limit(200)
    ids = sorted({i for g in groups for i in _ids(g["record_ids"])})
    cols = [Person.id, Person.name, Person.email, Person.phone, Person.city, Person.organization.name]
    visible = {r["id"]: acc.present(PERSON_MODEL, dict(r)) for r in await (await acc.select(
        Person, PERSON_MODEL, *cols, where=Person.id.is_in(ids or [-1])))}
    shown = [{"id": g["id"], "score": g["score"] / 1000, "people": [visible[i] for i in _ids(g["record_ids"])
                                                                     if i in visible]} for g in groups]
    return await render(request, "crm_contacts/duplicates.html", groups=[g for g in shown if len(g["people"]) > 1],
                  can_update=acc.can(DUPLICATE, "update"), can_merge=acc.can("crm_contacts.merge", "create"))


async def scan_now(request: Request) -> Response:
    acc = access(request)
    await acc.require(DUPLICATE, "update")
    async with db.atomic():
        await jobs.enqueue("crm_contacts.dedup_scan", dedup_key=None)
    return RedirectResponse("/contacts/duplicates", status_code=303)


async def dismiss(request: Request) -> Response:
    from crm_contacts.models import DuplicateGroup

    acc = access(request)
    await acc.require(DUPLICATE, "update")
    await DuplicateGroup.update({DuplicateGroup.status: "dismissed"}).where(
        DuplicateGroup.id == int(request.path_params["id"]))
    return RedirectResponse("/contacts/duplicates", status_code=303)


async def merge_page(request: Request) -> Response:
    """GET: the records side by side, one radio per field; POST: merge into the chosen survivor."""
    acc = access(request)
    model = PERSON_MODEL if request.query_params.get("model", "person") == "person" else "crm_contacts.organization"
    table = table_of(model)
    if request.method == "POST":
        form = await request.form()
        ids = [int(str(i)) for i in form.getlist("ids") if str(i).isdigit()]
        survivor = int(str(form.get("survivor", "0")) or 0)
        choices = {f: int(str(form.get(f"field_{f}"))) for f in fields_of(model)
                   if str(form.get(f"field_{f}", "")).isdigit()}
        result = await merge(acc, model, survivor, [i for i in ids if i != survivor], choices)
        kind = "people" if model == PERSON_MODEL else "organizations"
        return RedirectResponse(f"/contacts/{kind}/{result['survivor_id']}", status_code=303)
    ids = [int(i) for i in request.query_params.get("ids", "").split(",") if i.strip().isdigit()]
    if len(ids) < 2:
        raise ValidationError({"ids": N_("choose at least two records to merge")})
    rows = [acc.present(model, await acc.get(table, model, i, action="update")) for i in ids]
    return await render(request, "crm_contacts/merge.html", rows=rows, fields=fields_of(model), labels=FIELD_LABELS,
                  model="person" if model == PERSON_MODEL else "organization", shown=await _shown(acc, rows))


async def _shown(acc: Any, rows: list[dict[str, Any]]) -> dict[tuple[int, str], str]:
    """(record id, field) → what to show for a value that is a key or an id: the organization's, owner's or
    team's name, the stage's label (translated by the page), the language's name. An organization is named
    only to a user who may read it (a reference is read like the record); to others it is "not visible"."""
    from core.security.models import Team, User
    from crm_contacts.api import ORGANIZATION_MODEL
    from crm_contacts.models import Organization, Stage

    def ids(field: str) -> list[int]:
        return sorted({int(r[field]) for r in rows if r.get(field)}) or [-1]

    readable: dict[int, str] = {}
    if acc.can(ORGANIZATION_MODEL):
        readable = {o["id"]: o["name"] for o in await (await acc.select(
            Organization, ORGANIZATION_MODEL, Organization.id, Organization.name,
            where=Organization.id.is_in(ids("organization"))))}
    names = {
        "organization": {i: readable.get(i, N_("(not visible to you)")) for i in ids("organization")},
        "owner": {u["id"]: u["name"] for u in await User.select(User.id, User.name).where(User.id.is_in(ids("owner")))},
        "team": {t["id"]: t["name"] for t in await Team.select(Team.id, Team.name).where(Team.id.is_in(ids("team")))},
        "stage": {s["key"]: s["label"] for s in await Stage.select(Stage.key, Stage.label)},
        "language": LANGUAGE_LABELS,
    }
    return {(r["id"], f): str(known[r[f]]) for r in rows for f, known in names.items() if r.get(f) in known}


ROUTES = [
    Route("/duplicates", group_list, name="duplicates"),
    Route("/duplicates/scan", scan_now, methods=["POST"], name="duplicates_scan"),
    Route("/duplicates/{id:int}/dismiss", dismiss, methods=["POST"], name="duplicates_dismiss"),
    Route("/merge", merge_page, methods=["GET", "POST"], name="merge"),
]
