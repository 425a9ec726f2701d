"""The JSON API of crm_contacts (``core.api.Resource``): organizations, people and tags.

Standardization runs in each resource's ``validate`` (422 naming the field); the kernel does paging,
409 on a stale version, Idempotency-Key replay and auditing. Named actions:
``POST /api/contacts/people/{id}/merge`` ``{"loser_ids": [...], "choices": {"phone": 12}}``,
``…/duplicates`` (candidates for this record), ``…/reveal`` ``{"field": "phone"}`` (audited),
``…/tags`` ``{"add": [...], "remove": [...]}``, ``…/gdpr_export`` and ``…/erase``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from core.api import Resource, json_body
from core.errors import ValidationError
from core.i18n import N_
from core.openapi import ID, NON_BLANK
from core.security import audit
from core.security.access import Access
from core.values import INT32, integer
from crm_contacts import events
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL, TAG_MODEL

PERSON_FIELDS = ("name", "given_name", "family_name", "organization", "job_title", "email", "phone",
                 "phone_original", "language", "country", "province", "city", "industry", "stage", "source",
                 "birth_date", "custom", "owner", "team", "merged_into", "is_archived", "version", "created_at",
                 "updated_at")
PERSON_WRITABLE = ("name", "given_name", "family_name", "organization", "job_title", "email", "phone", "language",
                   "country", "region", "province", "city", "industry", "stage", "source", "birth_date", "custom",
                   "owner")
ORG_FIELDS = ("name", "tax_id", "industry", "website", "email", "phone", "phone_original", "country", "province",
              "city", "stage", "source", "custom", "owner", "team", "merged_into", "is_archived", "version",
              "created_at", "updated_at")
ORG_WRITABLE = ("name", "tax_id", "industry", "website", "email", "phone", "country", "region", "province", "city",
                "stage", "source", "custom", "owner")
FILTERS = ("stage", "owner", "team", "country", "province", "city", "source", "industry")


async def _body(request: Request) -> dict[str, Any]:
    return await json_body(request)


# request bodies of the actions, for the OpenAPI document
MERGE_BODY = {"type": "object", "required": ["loser_ids"], "properties": {
    "loser_ids": {"type": "array", "minItems": 1, "items": ID},
    "choices": {"type": "object", "description": "field name → the record whose value to keep",
                "additionalProperties": ID}}}
REVEAL_BODY = {"type": "object", "required": ["field"],
               "properties": {"field": {"enum": ["phone", "phone_original", "email"]}}}
TAGS_BODY = {"type": "object", "properties": {"add": {"type": "array", "items": NON_BLANK},
                                              "remove": {"type": "array", "items": NON_BLANK}}}


def record_id_of(value: Any, name: str) -> int:
    """A record id in a JSON body: a whole number (not text) that a key can hold; 422 naming ``name``."""
    return integer(value, name, (1, INT32[1]))


async def _check_owner(values: dict[str, Any]) -> None:
    from core.security.models import User

    if values.get("owner") is not None:
        try:
            values["owner"] = int(values["owner"])
        except (TypeError, ValueError):
            raise ValidationError({"owner": N_("must be a user id")}) from None
        if not await User.exists().where(User.id == values["owner"]):
            raise ValidationError({"owner": N_("user %(id)s does not exist") % {"id": values["owner"]}})


async def validate_person(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_contacts.cleaning import clean_person

    await _check_owner(values)
    clean = await clean_person(values, before)
    if before is not None:  # an update: the event goes out at the end of its transaction, after the write
        await events.updated("person", [int(before["id"])], [k for k in clean if before.get(k) != clean[k]])
    return clean


async def validate_organization(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_contacts.cleaning import clean_organization

    await _check_owner(values)
    clean = await clean_organization(values, before)
    if before is not None:
        await events.updated("organization", [int(before["id"])], [k for k in clean if before.get(k) != clean[k]])
    return clean


async def validate_tag(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from crm_contacts.standardize import fold_width

    if "name" in values:
        name = " ".join(fold_width(str(values.get("name") or "")).split())
        if not name or len(name) > 60:
            raise ValidationError({"name": N_("must be 1 to 60 characters")})
        values["name"] = name
        from crm_contacts.models import Tag

        clash = await Tag.select(Tag.id).where(Tag.name == name).first()
        if clash is not None and (before is None or clash["id"] != before.get("id")):
            raise ValidationError({"name": N_("a tag named %(name)s already exists") % {"name": repr(name)}})
    return values


def _creator(model: str) -> Any:
    async def create(acc: Access, values: dict[str, Any]) -> int:
        from core import hooks
        from crm_contacts.models import Organization, Person

        table: Any = Person if model == PERSON_MODEL else Organization
        principal = acc.principal
        if principal is not None:
            values.setdefault("owner", principal.user_id)
            if len(principal.team_ids) == 1:
                values.setdefault("team", next(iter(principal.team_ids)))
        row = table(_data={table._meta.get_column_by_name(k): v for k, v in values.items()})
        await row.save()
        if model == PERSON_MODEL:
            await hooks.publish("crm_contacts_person_created", person_id=int(row.id))
        return int(row.id)

    return create


def _table(model: str) -> Any:
    from crm_contacts.models import Organization, Person

    return Person if model == PERSON_MODEL else Organization


def _merge_action(model: str) -> Any:
    async def action(request: Request, acc: Access, record_id: int) -> Any:
        from crm_contacts.merging import merge

        body = await _body(request)
        losers = body.get("loser_ids")
        if not isinstance(losers, list):
            raise ValidationError({"loser_ids": N_("must be a list of record ids")})
        losers = [record_id_of(i, "loser_ids") for i in losers]  # JSON ids: whole numbers, not text
        choices = body.get("choices") or {}
        if not isinstance(choices, dict):
            raise ValidationError({"choices": N_("must map field names to record ids")})
        choices = {str(k): record_id_of(v, f"choices.{k}") for k, v in choices.items()}
        return await merge(acc, model, record_id, losers, choices)

    return action


def _duplicates_action(model: str) -> Any:
    async def action(request: Request, acc: Access, record_id: int) -> Any:
        from crm_contacts.duplicates import organization_candidates, person_candidates, scoped

        row = await acc.get(_table(model), model, record_id)
        find = person_candidates if model == PERSON_MODEL else organization_candidates
        return (await scoped(acc, model, await find(row, exclude_id=record_id))).as_dict()

    return action


def _reveal_action(model: str) -> Any:
    async def action(request: Request, acc: Access, record_id: int) -> Any:
        field = (await _body(request)).get("field")
        if field not in ("phone", "phone_original", "email"):
            raise ValidationError({"field": N_("must be phone, phone_original or email")})
        return {"field": field, "value": await acc.reveal(_table(model), model, record_id, field)}

    return action


async def _tags_action(request: Request, acc: Access, record_id: int) -> Any:
    from crm_contacts.services import set_tags

    body = await _body(request)
    add, remove = body.get("add") or [], body.get("remove") or []
    if not isinstance(add, list) or not isinstance(remove, list):
        raise ValidationError({"add": N_("add and remove must be lists of tag names")})
    await acc.get(_table(PERSON_MODEL), PERSON_MODEL, record_id, action="update")
    names = await set_tags(acc, PERSON_MODEL, [record_id], add=[str(t) for t in add], remove=[str(t) for t in remove])
    await audit.record("update", model=PERSON_MODEL, record_id=record_id, changes={"tags": [None, names]})
    return {"tags": names}


async def _gdpr_export(request: Request, acc: Access, record_id: int) -> Any:
    from crm_contacts.gdpr import export_person

    return await export_person(acc, record_id)


async def _erase(request: Request, acc: Access, record_id: int) -> Any:
    from crm_contacts.gdpr import erase_person

    await erase_person(acc, record_id)
    return {"erased": record_id}


def resources() -> list[Resource]:
    """The three resources, built lazily so importing this module does not import the tables."""
    from crm_contacts.models import Organization, Person, Tag

    sortable = ("id", "name", "created_at", "updated_at")
    return [
        Resource(path="/contacts/people", model=PERSON_MODEL, table=Person, fields=PERSON_FIELDS,
                 writable=PERSON_WRITABLE, filters=(*FILTERS, "organization"), sortable=sortable,
                 validate=validate_person, create=_creator(PERSON_MODEL), archive_on_delete=True,
                 summary="People (contacts)", custom="custom",
                 actions={"merge": _merge_action(PERSON_MODEL), "duplicates": _duplicates_action(PERSON_MODEL),
                          "reveal": _reveal_action(PERSON_MODEL), "tags": _tags_action,
                          "gdpr_export": _gdpr_export, "erase": _erase},
                 action_bodies={"merge": MERGE_BODY, "reveal": REVEAL_BODY, "tags": TAGS_BODY}),
        Resource(path="/contacts/organizations", model=ORGANIZATION_MODEL, table=Organization, fields=ORG_FIELDS,
                 writable=ORG_WRITABLE, required=("name",), filters=FILTERS, sortable=sortable,
                 validate=validate_organization,
                 create=_creator(ORGANIZATION_MODEL), archive_on_delete=True, summary="Organizations", custom="custom",
                 actions={"merge": _merge_action(ORGANIZATION_MODEL),
                          "duplicates": _duplicates_action(ORGANIZATION_MODEL),
                          "reveal": _reveal_action(ORGANIZATION_MODEL)},
                 action_bodies={"merge": MERGE_BODY, "reveal": REVEAL_BODY}),
        Resource(path="/contacts/tags", model=TAG_MODEL, table=Tag, fields=("name", "color", "version"),
                 writable=("name", "color"), required=("name",), filters=("name",), sortable=("id", "name"),
                 validate=validate_tag, summary="Tags"),
    ]
