"""crm_contacts: the customer data hub. This module is the addon's table of contents (cheap to import)."""

from __future__ import annotations

from core.addon import Action, Addon, Every, FieldRule, Grant, Menu, Role

PERSON = "crm_contacts.person"
ORGANIZATION = "crm_contacts.organization"
TAG = "crm_contacts.tag"
IMPORT = "crm_contacts.import"
DUPLICATE = "crm_contacts.duplicate"
MERGE = "crm_contacts.merge"
SAVED_FILTER = "crm_contacts.saved_filter"

_CRUD: tuple[Action, ...] = ("create", "read", "update", "delete", "export")
_CONTACTS = (PERSON, ORGANIZATION)


def _grants() -> tuple[Grant, ...]:
    out: list[Grant] = []
    for model in _CONTACTS:
        out += [
            # reps work their own book; managers their team and the people reporting to them
            Grant("sales_rep", model, ("create", "read", "update", "export"), scope="own"),
            Grant("sales_manager", model, _CRUD, scope="team"),
            Grant("sales_manager", model, _CRUD, scope="subordinates"),
            Grant("service_agent", model, ("read",), scope="all"),
            Grant("marketing", model, ("read", "export"), scope="all"),
            Grant("finance", model, ("read", "export"), scope="all"),
            Grant("readonly", model, ("read",), scope="all"),
        ]
    for role in ("sales_rep", "sales_manager", "service_agent", "marketing", "finance", "readonly"):
        out.append(Grant(role, TAG, ("read",) if role in ("readonly", "finance") else ("read", "create")))
        out.append(Grant(role, SAVED_FILTER, ("create", "read", "update", "delete"), scope="own"))
    out += [
        Grant("sales_manager", TAG, ("update", "delete")),
        Grant("sales_rep", IMPORT, ("create", "read", "update"), scope="own"),
        Grant("sales_manager", IMPORT, ("create", "read", "update", "delete"), scope="team"),
        Grant("marketing", IMPORT, ("create", "read", "update"), scope="own"),
        # a rep reviews the duplicate groups of their own people (the page shows only people they may read)
        Grant("sales_rep", DUPLICATE, ("read",)),
        Grant("sales_manager", DUPLICATE, ("read", "update")),
        Grant("sales_manager", MERGE, ("create", "read")),
        Grant("readonly", MERGE, ("read",)),
    ]
    return tuple(out)


def _field_rules() -> tuple[FieldRule, ...]:
    # Roles with no rule on a field edit it (reps and managers work with their own customers' numbers).
    # Service and finance may reveal one record's value when they need it (audited); marketing and
    # read-only users only ever see masked values.
    who = {"service_agent": True, "finance": True, "marketing": False, "readonly": False}
    out: list[FieldRule] = []
    for model in _CONTACTS:
        for role, reveal in who.items():
            out += [
                FieldRule(role, model, "phone", "masked", masker="phone", reveal=reveal),
                # the number as typed is the same secret in another spelling
                FieldRule(role, model, "phone_original", "masked", masker="phone", reveal=reveal),
                FieldRule(role, model, "phone_original", "masked", masker="phone", reveal=reveal),
                FieldRule(role, model, "email", "masked", masker="email", reveal=reveal),
                FieldRule(role, model, "email_key", "hidden"),
                FieldRule(role, model, "search_text", "hidden"),
            ]
    return tuple(out)


ADDON = Addon(
    name="crm_contacts", version="1.0.0",
    label="Contacts",
    summary="Customer data hub: organizations and people, standardization, duplicates and merge, import, 360°",
    models="crm_contacts.models", migrations="crm_contacts.migrations",
    routes="crm_contacts.views:ROUTES", mount="/contacts",
    templates="crm_contacts:templates", static="crm_contacts:static",
    actors="crm_contacts.actors", hooks=("crm_contacts.hooks", "crm_contacts.automation"),
    hookspecs="crm_contacts.hookspecs",
    schedules=(Every(hours=24, actor="crm_contacts.dedup_scan"),),
    roles=(
        Role("sales_rep", "Sales representative"),
        Role("sales_manager", "Sales manager", implies=("sales_rep",)),
        Role("service_agent", "Service agent"),
        Role("marketing", "Marketing"),
        Role("finance", "Finance"),
    ),
    permissions=_grants(),
    field_rules=_field_rules(),
    menus=(
        Menu("People", "/contacts/people", model=PERSON, order=10),
        Menu("Organizations", "/contacts/organizations", model=ORGANIZATION, order=11),
        Menu("Duplicates", "/contacts/duplicates", model=DUPLICATE, order=12),
        Menu("Imports", "/contacts/imports", model=IMPORT, order=13),
    ),
    data=("data/crm_contacts_stage.csv",),
    on_install="crm_contacts.setup:install",
    demo=("demo/crm_contacts_organization.csv", "demo/crm_contacts_person.csv"),
)
