"""Hook implementations of crm_marketing: the JSON API, the contact's 360° panel, merges, datasets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.hooks import Dataset, Dimension, Measure, Panel, hookimpl
from core.i18n import N_, gettext
from core.security.access import Access


@hookimpl
def crm_api_resources() -> Any:
    from crm_marketing.resources import resources

    return resources()


@hookimpl
async def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    """On a person's 360° page: the campaigns they were sent (opened? clicked?) and the segments they are in."""
    from crm_contacts.api import PERSON_MODEL

    from crm_marketing.manifest import CAMPAIGN, JOURNEY, SEGMENT
    from crm_marketing.models import (
        Campaign,
        CampaignEvent,
        CampaignRecipient,
        Journey,
        JourneyEnrollment,
        Segment,
        SegmentMember,
    )

    if (
        model != PERSON_MODEL
        or access.principal is None
        or not (access.can(CAMPAIGN) or access.can(SEGMENT) or access.can(JOURNEY))
    ):
        return []
    sent: list[dict[str, Any]] = []
    if access.can(CAMPAIGN):
        sent = [
            dict(r)
            for r in await CampaignRecipient.select(
                CampaignRecipient.id,
                CampaignRecipient.campaign,
                CampaignRecipient.campaign.name.as_alias("name"),
                CampaignRecipient.state,
                CampaignRecipient.sent_at,
            )
            .where(CampaignRecipient.person == record_id)
            .order_by(CampaignRecipient.id, ascending=False)
            .limit(50)
        ]
        readable = {
            int(r["id"])
            for r in await (
                await access.select(
                    Campaign, CAMPAIGN, Campaign.id, where=Campaign.id.is_in([r["campaign"] for r in sent] or [0])
                )
            )
        }
        sent = [r for r in sent if int(r["campaign"]) in readable]
        hits: dict[tuple[int, str], int] = {}
        if sent:
            for e in await CampaignEvent.select(CampaignEvent.recipient, CampaignEvent.kind).where(
                CampaignEvent.recipient.is_in([r["id"] for r in sent]) & CampaignEvent.is_scanner.eq(False)
            ):
                key = (int(e["recipient"]), e["kind"])
                hits[key] = hits.get(key, 0) + 1
        for r in sent:
            r["opens"], r["clicks"] = hits.get((int(r["id"]), "open"), 0), hits.get((int(r["id"]), "click"), 0)
    groups: list[dict[str, Any]] = []
    if access.can(SEGMENT):
        ids = [
            int(r["segment"])
            for r in await SegmentMember.select(SegmentMember.segment).where(SegmentMember.person == record_id)
        ]
        if ids:
            groups = list(
                await (
                    await access.select(
                        Segment, SEGMENT, Segment.id, Segment.name, Segment.is_static, where=Segment.id.is_in(ids)
                    )
                ).order_by(Segment.name)
            )
    paths: list[dict[str, Any]] = []
    if access.can(JOURNEY):
        paths = [
            dict(r)
            for r in await JourneyEnrollment.select(
                JourneyEnrollment.journey,
                JourneyEnrollment.journey.name.as_alias("name"),
                JourneyEnrollment.position,
                JourneyEnrollment.state,
                JourneyEnrollment.entered_at,
            )
            .where(JourneyEnrollment.person == record_id)
            .order_by(JourneyEnrollment.id, ascending=False)
            .limit(20)
        ]
        if paths:
            readable = {
                int(r["id"])
                for r in await (
                    await access.select(
                        Journey, JOURNEY, Journey.id, where=Journey.id.is_in([r["journey"] for r in paths])
                    )
                )
            }
            paths = [r for r in paths if int(r["journey"]) in readable]
    score = None
    if access.can(SEGMENT):  # RFM scores and value tier (rfm.py)
        from crm_marketing import rfm

        score = await rfm.of_person(record_id)
    return [
        Panel(
            key="crm_marketing",
            title=gettext("Marketing"),
            template="crm_marketing/panel_person.html",
            context={"campaigns": sent, "segments": groups, "journeys": paths, "rfm": score},
            order=40,
            count=len(sent),
        )
    ]


@hookimpl
async def crm_merge_records(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    """Re-point memberships, recipients, journey passes, events and do-not-contact entries from merged people to
    the survivor, keeping one membership (recipient, pass) per segment (campaign, journey) where both were."""
    from crm_contacts.api import PERSON_MODEL

    from crm_marketing.models import (
        CampaignRecipient,
        FormSubmission,
        JourneyEnrollment,
        MarketingEvent,
        SegmentMember,
        Suppression,
    )

    if model != PERSON_MODEL or not loser_ids:
        return
    # a journey is entered once: where the survivor is in it already, the merged people's passes go
    for table, group in (
        (SegmentMember, SegmentMember.segment),
        (CampaignRecipient, CampaignRecipient.campaign),
        (JourneyEnrollment, JourneyEnrollment.journey),
    ):
        taken = [r[group._meta.name] for r in await table.select(group).where(table.person == survivor_id)]
        if taken:
            await table.delete().where(table.person.is_in(loser_ids) & group.is_in(taken))
        await table.update({table.person: survivor_id}).where(table.person.is_in(loser_ids))
    await Suppression.update({Suppression.person: survivor_id}).where(Suppression.person.is_in(loser_ids))
    from crm_marketing.models import RfmScore

    await RfmScore.delete().where(RfmScore.person.is_in(loser_ids))  # merged people are scored no more
    await MarketingEvent.update({MarketingEvent.person: survivor_id}).where(MarketingEvent.person.is_in(loser_ids))
    # form submissions are touches for attribution: they follow the person
    await FormSubmission.update({FormSubmission.person: survivor_id}).where(FormSubmission.person.is_in(loser_ids))


@hookimpl
def crm_datasets() -> Sequence[Dataset]:
    from crm_marketing import returns
    from crm_marketing.manifest import CAMPAIGN, SEGMENT
    from crm_marketing.models import (
        Campaign,
        CampaignEvent,
        CampaignRecipient,
        CampaignReturn,
        RfmScore,
        SegmentMember,
    )

    return [
        # revenue, cost and ROI by campaign, under the orders' rights (returns.py); seen only where some addon
        # provides orders (the model's grants come with it)
        Dataset(
            key=returns.DATASET,
            label=gettext("Campaign returns"),
            model=returns.ORDER_MODEL,
            table=CampaignReturn,
            dimensions=(
                Dimension("campaign", gettext("Campaign"), "campaign"),
                Dimension("currency", gettext("Currency"), "currency"),
                Dimension("confirmed_at", gettext("Ordered"), "confirmed_at"),
            ),
            measures=(
                Measure("revenue", gettext("Revenue"), "sum", "total"),
                Measure("orders", gettext("Orders"), "count"),
                Measure("cost", gettext("Cost"), "max", "cost"),
                Measure("roi", gettext("ROI"), "return", "total", cost="cost"),
            ),
        ),
        Dataset(
            key="crm_marketing.campaigns",
            label=gettext("Campaigns"),
            model=CAMPAIGN,
            table=Campaign,
            dimensions=(
                Dimension("state", gettext("State"), "state"),
                Dimension("currency", gettext("Currency"), "currency"),
            ),
            measures=(Measure("count", gettext("Campaigns"), "count"), Measure("cost", gettext("Cost"), "sum", "cost")),
        ),
        Dataset(
            key="crm_marketing.recipients",
            label=gettext("Campaign recipients"),
            model=CAMPAIGN,
            table=CampaignRecipient,
            dimensions=(
                Dimension("campaign", gettext("Campaign"), "campaign"),
                Dimension("state", gettext("State"), "state"),
            ),
            measures=(Measure("count", gettext("Recipients"), "count"),),
        ),
        Dataset(
            key="crm_marketing.events",
            label=gettext("Opens and clicks"),
            model=CAMPAIGN,
            table=CampaignEvent,
            dimensions=(
                Dimension("campaign", gettext("Campaign"), "campaign"),
                Dimension("kind", gettext("Kind"), "kind"),  # stored open | click | unsubscribe: read as words
                Dimension("is_scanner", gettext("Mail scanner"), "is_scanner"),
            ),
            measures=(Measure("count", gettext("Events"), "count"),),
        ),
        # segment sizes; value tiers per customer (reports read a customer's tier from a dataset with the
        # dimensions "person" and "tier": churn rules per tier)
        Dataset(
            key="crm_marketing.segment_members",
            label=gettext("Segment members"),
            model=SEGMENT,
            table=SegmentMember,
            dimensions=(Dimension("segment", gettext("Segment"), "segment"),),
            measures=(Measure("count", gettext("Members"), "count"),),
        ),
        Dataset(
            key="crm_marketing.tiers",
            label=gettext("RFM and value tiers"),
            model=SEGMENT,
            table=RfmScore,
            dimensions=(
                Dimension("tier", gettext("Value tier"), "tier"),
                Dimension("person", gettext("Customer"), "person"),
                Dimension("r", gettext("Recency score"), "r"),
                Dimension("f", gettext("Frequency score"), "f"),
            ),
            measures=(
                Measure("count", gettext("Customers"), "count"),
                Measure("monetary", gettext("Monetary value"), "sum", "monetary"),
                Measure("recency_days", gettext("Average days since the last order"), "avg", "recency_days"),
            ),
        ),
    ]


@hookimpl
async def crm_contacts_person_created(person_id: int) -> None:
    """A new person joins the segments they match within seconds (one job per transaction, after its commit)."""
    from crm_marketing import freshness

    await freshness.note(person_id)


@hookimpl
async def crm_contacts_person_updated(person_id: int, fields: list[str]) -> None:
    """A changed person (any field: a segment may name any of them, tags too) joins or leaves segments."""
    from crm_marketing import freshness

    await freshness.note(person_id)


@hookimpl(optionalhook=True)
async def crm_sales_order_confirmed(order_id: int) -> None:
    """With crm_sales: the customer's segments over orders follow within seconds, and so do the returns of the
    campaigns they clicked (the ROI dataset)."""
    from crm_marketing import freshness, returns

    await freshness.note_order(order_id)
    await returns.note_order(order_id)


@hookimpl(optionalhook=True)
async def crm_sales_order_cancelled(order_id: int) -> None:
    from crm_marketing import freshness, returns

    await freshness.note_order(order_id)
    await returns.note_order(order_id)


@hookimpl
async def crm_contacts_person_erased(person_id: int) -> None:
    """Drop what was copied of an erased person: memberships and the address on past recipients. The
    do-not-contact entry stays: it is what keeps them from being mailed again."""
    from crm_marketing.models import CampaignRecipient, FormSubmission, MarketingEvent, SegmentMember

    await SegmentMember.delete().where(SegmentMember.person == person_id)
    from crm_marketing.models import RfmScore

    await RfmScore.delete().where(RfmScore.person == person_id)  # what they bought, in figures
    await MarketingEvent.delete().where(MarketingEvent.person == person_id)  # what they looked at
    await CampaignRecipient.update({CampaignRecipient.email: ""}).where(CampaignRecipient.person == person_id)
    # what they typed into forms goes; the submission (a touch, with its UTM codes) stays
    await FormSubmission.update({FormSubmission.data: "{}"}).where(FormSubmission.person == person_id)


#: the events' stored kinds as charts read them (humanized, then translated: "Open" is the kernel's word)
EVENT_KIND_WORDS = (N_("Click"), N_("Unsubscribe"))
