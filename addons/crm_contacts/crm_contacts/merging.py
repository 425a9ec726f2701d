"""Merge 2+ people (or organizations) into one survivor, in one transaction.

Field by field the caller chooses which record a value comes from (default: the survivor's, or the first
loser's when the survivor's is empty). Phones and emails that lose are kept as extra channels of the
survivor. Then every installed addon re-points its references through the kernel hook
``crm_merge_records`` (this addon's own tables included, see ``hooks.py``), the losers are archived with
``merged_into`` = survivor, and the merge is recorded (``Merge`` row + audit). Any failure aborts it all.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from core import db, hooks, records
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_contacts import events
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL

MERGE_MODEL = "crm_contacts.merge"
PERSON_FIELDS = ("name", "given_name", "family_name", "organization", "job_title", "email", "phone", "language",
                 "country", "province", "city", "industry", "stage", "source", "birth_date", "owner", "team")
ORGANIZATION_FIELDS = ("name", "tax_id", "industry", "website", "email", "phone", "country", "province", "city",
                       "stage", "source", "owner", "team")
# a chosen field brings the values stored alongside it
_COMPANIONS = {"email": ("email_key",), "phone": ("phone_original",), "tax_id": ("tax_id_key",)}


def _table(model: str) -> Any:
    from crm_contacts.models import Organization, Person

    if model == PERSON_MODEL:
        return Person
    if model == ORGANIZATION_MODEL:
        return Organization
    raise ValidationError({"model": N_("cannot merge %(model)s") % {"model": repr(model)}})


def fields_of(model: str) -> tuple[str, ...]:
    return PERSON_FIELDS if model == PERSON_MODEL else ORGANIZATION_FIELDS


def plan(model: str, rows: Mapping[int, Mapping[str, Any]], survivor_id: int,
         choices: Mapping[str, int]) -> dict[str, Any]:
    """The survivor's new values: each field from the chosen record, else kept, else the first non-empty."""
    out: dict[str, Any] = {}
    for name in fields_of(model):
        source = choices.get(name)
        if source is not None:
            if int(source) not in rows:
                raise ValidationError({f"choices.{name}": f"record {source} is not part of the merge"})
            chosen = rows[int(source)]
        elif rows[survivor_id].get(name) in (None, ""):
            chosen = next((r for i, r in rows.items() if i != survivor_id and r.get(name) not in (None, "")),
                          rows[survivor_id])
        else:
            continue
        if chosen.get(name) != rows[survivor_id].get(name):
            out[name] = chosen.get(name)
            for companion in _COMPANIONS.get(name, ()):
                out[companion] = chosen.get(companion)
    unknown = set(choices) - set(fields_of(model))
    if unknown:
        raise ValidationError({f"choices.{sorted(unknown)[0]}": "is not a mergeable field"})
    return out


async def _keep_channels(model: str, survivor: Mapping[str, Any], losers: list[Mapping[str, Any]]) -> None:
    """Phones and emails of the merged records (the survivor's replaced ones included) that the survivor no
    longer carries become its extra channels, so a merge never loses a way to reach the customer."""
    from crm_contacts.models import Channel

    fk = "person" if model == PERSON_MODEL else "organization"
    have = {survivor.get("phone"), survivor.get("email_key")}
    for row in await Channel.select(Channel.value_key).where(Channel._meta.get_column_by_name(fk) == survivor["id"]):
        have.add(row["value_key"])
    for loser in losers:
        for kind, value, key, original in (("phone", loser.get("phone"), loser.get("phone"),
                                            loser.get("phone_original")),
                                           ("email", loser.get("email"), loser.get("email_key"), loser.get("email"))):
            if value and key not in have:
                have.add(key)
                await Channel.insert(Channel(_data={
                    Channel._meta.get_column_by_name(fk): survivor["id"], Channel.kind: kind, Channel.value: value,
                    Channel.value_key: key, Channel.original: original or "", Channel.label: "merged"}))


async def merge(acc: Access, model: str, survivor_id: int, loser_ids: list[int],
                choices: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Merge ``loser_ids`` into ``survivor_id`` for the user behind ``acc``; returns a summary.

    Needs the merge right and update access to every record involved (404 for records out of scope).
    """
    from crm_contacts.cleaning import _search_text
    from crm_contacts.models import Merge

    table = _table(model)
    if not acc.can(MERGE_MODEL, "create"):
        await audit.record("denied", model=model, record_id=survivor_id, detail="merge", principal=acc.principal)
        raise PermissionDenied(N_("you may not merge records"))
    losers = sorted({int(i) for i in loser_ids} - {int(survivor_id)})
    if not losers:
        raise ValidationError({"loser_ids": N_("name at least one other record to merge")})
    choices = {k: int(v) for k, v in (choices or {}).items()}
    async with db.atomic():
        rows: dict[int, dict[str, Any]] = {}
        for record_id in [survivor_id, *losers]:
            row = await acc.get(table, model, record_id, action="update", include_archived=True)
            if row["is_archived"]:
                raise ValidationError({"loser_ids" if record_id != survivor_id else "survivor_id":
                                       f"record {record_id} is archived"})
            rows[record_id] = row
        changes = plan(model, rows, survivor_id, choices)
        after = {**rows[survivor_id], **changes}
        org_name = ""
        if model == PERSON_MODEL and after.get("organization"):
            org_name = (await _table(ORGANIZATION_MODEL).select().where(
                _table(ORGANIZATION_MODEL).id == after["organization"]).first() or {}).get("name", "")
        changes["search_text"] = _search_text(after, org_name if model == PERSON_MODEL else after.get("industry", ""))
        changes["updated_at"] = dt.datetime.now(dt.UTC)
        await table.update({table._meta.get_column_by_name(k): v for k, v in changes.items()} | {
            table.version: table.version + 1}).where(table.id == survivor_id)
        await _keep_channels(model, after, [rows[survivor_id], *(rows[i] for i in losers)])
        await records.repoint(model, survivor_id, losers)
        await table.update({table.is_archived: True, table.merged_into: survivor_id,
                            table.version: table.version + 1}).where(table.id.is_in(losers))
        snapshot = {str(i): {k: rows[i].get(k) for k in (*fields_of(model), "email_key", "phone_original")}
                    for i in losers}
        merge_row = Merge(model=model, survivor_id=survivor_id, loser_ids=losers, choices=choices,
                          snapshot=json.loads(json.dumps(snapshot, default=str)),
                          owner=acc.principal.user_id if acc.principal else None)
        await merge_row.save()
        await audit.record("merge", model=model, record_id=survivor_id, principal=acc.principal,
                           changes=audit.diff({k: rows[survivor_id].get(k) for k in changes}, changes),
                           detail=f"merged {', '.join(map(str, losers))} into {survivor_id}")
        for loser in losers:
            await audit.record("archive", model=model, record_id=loser, principal=acc.principal,
                               detail=f"merged into {survivor_id}")
        await hooks.publish("crm_contacts_records_merged", model=model, survivor_id=survivor_id, loser_ids=losers)
        # the survivor also takes the losers' tags and, in other addons, their history: "tags" always
        await events.updated(events.kind_of(model), [survivor_id], [*changes, "tags"])
        await events.updated(events.kind_of(model), losers, ["is_archived", "merged_into"])
    return {"survivor_id": survivor_id, "loser_ids": losers, "merge_id": int(merge_row.id),
            "changed": sorted(k for k in changes if k not in ("search_text", "updated_at"))}


async def relink_own(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    """This addon's side of ``crm_merge_records``: timeline notes and followers, addresses, channels, tags,
    members, groups."""
    from core.timeline import notes
    from crm_contacts.models import (
        Address,
        Channel,
        DuplicateGroup,
        OrganizationTag,
        Person,
        PersonTag,
    )

    tag_table: type[PersonTag | OrganizationTag]
    if model == PERSON_MODEL:
        fk, tag_table = "person", PersonTag
    else:
        fk, tag_table = "organization", OrganizationTag
        await Person.update({Person.organization: survivor_id}).where(Person.organization.is_in(loser_ids))
    await notes.merged(model, loser_ids, survivor_id)
    for table in (Address, Channel):
        col = table._meta.get_column_by_name(fk)
        await table.update({col: survivor_id}).where(col.is_in(loser_ids))
    # tags: a unique (record, tag) key, so drop the loser's copy of a tag the survivor already has
    col = tag_table._meta.get_column_by_name(fk)
    have = {r["tag"] for r in await tag_table.select(tag_table.tag).where(col == survivor_id)}
    for row in await tag_table.select(tag_table.id, tag_table.tag).where(col.is_in(loser_ids)):
        if row["tag"] in have:
            await tag_table.delete().where(tag_table.id == row["id"])
        else:
            have.add(row["tag"])
            await tag_table.update({col: survivor_id}).where(tag_table.id == row["id"])
    for group in await DuplicateGroup.select().where((DuplicateGroup.model == model) & (
            DuplicateGroup.status == "open")):
        raw = group["record_ids"]
        ids = set(json.loads(raw) if isinstance(raw, str) else raw or [])  # SQLite hands JSON back as text
        if ids & set(loser_ids):
            remaining = sorted((ids - set(loser_ids)) | {survivor_id})
            status = "merged" if len(remaining) < 2 else "open"
            await DuplicateGroup.update({DuplicateGroup.record_ids: remaining, DuplicateGroup.status: status}).where(
                DuplicateGroup.id == group["id"])
