"""crm_contacts' implementations of kernel hooks: API resources, merge re-linking, 360° panels, CLI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.hooks import OwnedRecords, Panel, SearchProvider, Widget, hookimpl

if TYPE_CHECKING:
    from core.security.access import Access


@hookimpl
def crm_api_resources() -> Any:
    from crm_contacts.resources import resources

    return resources()


@hookimpl
async def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL
    from crm_contacts.merging import relink_own

    if model in (PERSON_MODEL, ORGANIZATION_MODEL):
        await relink_own(model, survivor_id, loser_ids)


@hookimpl
def crm_cli_commands() -> Any:
    from crm_contacts.cli import contacts

    return [contacts]


def _kind(model: str) -> str | None:
    from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL

    return {PERSON_MODEL: "people", ORGANIZATION_MODEL: "organizations"}.get(model)


@hookimpl
async def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    """Past merges on the 360° page of people and organizations (notes are the kernel timeline's)."""
    from core.i18n import gettext as _
    from crm_contacts.manifest import MERGE
    from crm_contacts.models import Merge

    if _kind(model) is None:
        return []
    out: list[Panel] = []
    if access.can(MERGE):
        merges = await (await access.select(Merge, MERGE, Merge.loser_ids, Merge.created_at, where=(
            Merge.model == model) & (Merge.survivor_id == record_id))).output(load_json=True)
        if merges:
            out.append(Panel(key="crm_contacts_merges", title=_("Merges"), template="crm_contacts/panel_merges.html",
                             order=90, count=len(merges), context={"merges": merges}))
    return out


@hookimpl
async def crm_dashboard_widgets(access: Access) -> Sequence[Widget]:
    """Who works customers (may update people) sees their own latest; who only reads them (service, marketing,
    finance, read-only) the people added lately; both see how many people are in each lifecycle stage."""
    from piccolo.query.functions.aggregate import Count

    from core.i18n import gettext as _
    from crm_contacts.manifest import PERSON
    from crm_contacts.models import Person, Stage

    if access.principal is None or not access.can(PERSON):
        return []
    works = access.can(PERSON, "update")
    where = Person.owner == access.principal.user_id if works else None
    rows = await (await access.select(Person, PERSON, Person.id, Person.name, Person.organization.name,
                                      Person.created_at, where=where)).order_by(Person.id, ascending=False).limit(5)
    # one GROUP BY, not a count per stage: on a large base each count is a scan under the record rules
    counted = await (await access.select(Person, PERSON, Person.stage, Count())).group_by(Person.stage)
    per_stage = {r["stage"]: r["count"] for r in counted}
    stages = [{**s, "count": per_stage.get(s["key"], 0)}
              for s in await Stage.select(Stage.key, Stage.label).order_by(Stage.sequence)]
    return [
        Widget(key="crm_contacts_people", title=_("My latest customers") if works else _("Recently added people"),
               template="crm_contacts/widget_people.html", order=20,
               context={"rows": [access.present(PERSON, dict(r)) for r in rows]}),
        Widget(key="crm_contacts_stages", title=_("People by lifecycle stage"), order=30,
               template="crm_contacts/widget_stages.html", context={"stages": stages}),
    ]


@hookimpl
def crm_search_providers() -> Sequence[SearchProvider]:
    from crm_contacts.search import providers

    return providers()


@hookimpl
def crm_owned_records() -> Sequence[OwnedRecords]:
    """People and organizations pass on when their owner leaves; notes stay with who wrote them."""
    from core.i18n import gettext as _
    from crm_contacts.manifest import ORGANIZATION, PERSON
    from crm_contacts.models import Organization, Person

    return [OwnedRecords(PERSON, _("People"), Person, order=10),
            OwnedRecords(ORGANIZATION, _("Organizations"), Organization, order=11)]
