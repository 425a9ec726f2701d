"""Domain operations of crm_contacts used by pages, the API and the CLI: tags, notes, bulk changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core import db
from core.automation import record_changed
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.security.access import Access
from crm_contacts import events
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL, TAG_MODEL
from crm_contacts.standardize import fold_width


def table_of(model: str) -> Any:
    from crm_contacts.models import Organization, Person

    if model == PERSON_MODEL:
        return Person
    if model == ORGANIZATION_MODEL:
        return Organization
    raise ValidationError({"model": f"unknown model {model!r}"})


async def set_tags(acc: Access, model: str, record_ids: list[int], *, add: Sequence[str] = (),
                   remove: Sequence[str] = ()) -> list[str]:
    """Add/remove tags (by name) on records the caller already checked; new names need the tag create right.

    Returns the tag names of the last record afterwards.
    """
    from crm_contacts.models import OrganizationTag, PersonTag, Tag

    link: Any = PersonTag if model == PERSON_MODEL else OrganizationTag
    fk = link._meta.get_column_by_name("person" if model == PERSON_MODEL else "organization")
    names = [" ".join(fold_width(n).split()) for n in add if n.strip()]
    tag_ids: list[int] = []
    for name in names:
        if len(name) > 60:
            raise ValidationError({"tags": N_("a tag name is longer than 60 characters")})
        row = await Tag.select(Tag.id).where(Tag.name == name).first()
        if row is None:
            if not acc.can(TAG_MODEL, "create"):
                raise PermissionDenied(N_("you may not create the tag %(name)s") % {"name": repr(name)})
            tag = Tag(name=name)
            await tag.save()
            row = {"id": tag.id}
        tag_ids.append(int(row["id"]))
    drop = [int(r["id"]) for r in await Tag.select(Tag.id).where(Tag.name.is_in(list(remove)))] if remove else []
    async with db.atomic():
        for record_id in record_ids:
            have = {r["tag"] for r in await link.select(link.tag).where(fk == record_id)}
            for tag_id in tag_ids:
                if tag_id not in have:
                    await link.insert(link(_data={fk: record_id, link.tag: tag_id}))
            if drop:
                await link.delete().where((fk == record_id) & link.tag.is_in(drop))
        if tag_ids or drop:
            await events.updated(events.kind_of(model), record_ids, ["tags"])
    if not record_ids:
        return []
    return await tags_of(model, record_ids[-1])


async def tags_of(model: str, record_id: int) -> list[str]:
    from crm_contacts.models import OrganizationTag, PersonTag

    link: Any = PersonTag if model == PERSON_MODEL else OrganizationTag
    fk = link._meta.get_column_by_name("person" if model == PERSON_MODEL else "organization")
    rows = await link.select(link.tag.name).where(fk == record_id)
    return sorted(r["tag.name"] for r in rows)


async def bulk_update(acc: Access, model: str, record_ids: list[int], values: dict[str, Any]) -> int:
    """Set ``stage`` or ``owner`` on many records; each must be updatable by the user (else 404 for all)."""
    from crm_contacts.cleaning import _stage_exists

    allowed = {"stage", "owner"}
    if set(values) - allowed:
        raise ValidationError({sorted(set(values) - allowed)[0]: "cannot be changed in bulk"})
    await acc.check_write(model, values)
    if "stage" in values and not await _stage_exists(str(values["stage"])):
        raise ValidationError({"stage": N_("%(value)s is not a lifecycle stage") % {"value": repr(values["stage"])}})
    table = table_of(model)
    async with db.atomic():
        for record_id in record_ids:
            before = await acc.get(table, model, record_id, action="update")
            await table.update({table._meta.get_column_by_name(k): v for k, v in values.items()} | {
                table.version: table.version + 1}).where(table.id == record_id)
            await audit.record("update", model=model, record_id=record_id,
                               changes=audit.diff({k: before.get(k) for k in values}, values), detail="bulk")
            await record_changed(model, record_id, before, values)
            await events.updated(events.kind_of(model), [record_id], [k for k in values if before.get(k) != values[k]])
    return len(record_ids)
