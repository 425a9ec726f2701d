"""crm_contacts for the rule engine (``core.automation``): people and organizations may be automated (a deal's
condition may read its person, ``person.province``); bulk updates report their changes."""

from __future__ import annotations

from collections.abc import Sequence

from core.hooks import AutomationModel, hookimpl
from core.i18n import N_

PERSON_FIELDS = ("name", "given_name", "family_name", "organization", "job_title", "email", "phone", "language",
                 "province", "city", "industry", "stage", "source", "birth_date", "owner", "team", "created_at",
                 "updated_at")
ORGANIZATION_FIELDS = ("name", "tax_id", "industry", "website", "email", "phone", "province", "city", "stage",
                       "source", "owner", "team", "created_at", "updated_at")


@hookimpl
def crm_automation_models() -> Sequence[AutomationModel]:
    from core.hooks import IdleSource
    from crm_contacts.manifest import ORGANIZATION, PERSON
    from crm_contacts.models import Organization, Person

    return [
        AutomationModel(PERSON, N_("People"), Person, PERSON_FIELDS,
                        writable=("stage", "source", "industry", "province", "city", "language"),
                        relations={"organization": ORGANIZATION}, url="/contacts/people/{id}",
                        idle=IdleSource(since="updated_at")),
        AutomationModel(ORGANIZATION, N_("Organizations"), Organization, ORGANIZATION_FIELDS,
                        writable=("stage", "source", "industry", "province", "city"),
                        url="/contacts/organizations/{id}", idle=IdleSource(since="updated_at")),
    ]
