"""A/B test of two subjects on a share of a campaign's segment; the winner goes to the rest after a set wait.

When a campaign with ``ab_share`` > 0 is sent, its recipients are fixed as usual and then split in SQL: ranked
by a hash of (person, campaign) — random-looking, the same on every run — the first ``ab_share`` % alternate
between subject A (``a``) and subject B (``b``) and are queued; the others (``rest``) are ``held``.
``ab_wait_hours`` after the send, the scheduled actor ``crm_marketing.decide_ab_tests`` picks the winner (the
higher open rate, then click rate, scanner hits excluded; a tie keeps A) and releases the rest with it. The
decision is a conditional update (``ab_state`` testing → decided) in the transaction that releases and queues
the rest, so a retried or duplicated run decides once and queues nobody twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from core import db, jobs
from core.errors import ValidationError
from core.i18n import N_
from core.security import audit
from crm_marketing.manifest import CAMPAIGN
from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient

FIELDS = ("utm_campaign", "subject_b_en", "subject_b_zh", "ab_share", "ab_wait_hours")
MAX_SHARE = 90  # percent: a test of everyone leaves no one to receive the winner
MAX_WAIT_HOURS = 24 * 14

# the rank of a recipient: a multiplicative hash of the person (Knuth's constant) salted by the campaign, kept
# within a BIGINT on PostgreSQL and SQLite alike
_SPLIT_SQL = (
    'UPDATE "crm_marketing_campaign_recipient" SET '
    '"variant" = CASE WHEN r.rn > {} THEN \'rest\' WHEN r.rn % 2 = 1 THEN \'a\' ELSE \'b\' END, '
    '"state" = CASE WHEN r.rn > {} THEN \'held\' ELSE \'queued\' END '
    'FROM (SELECT "id", ROW_NUMBER() OVER (ORDER BY (COALESCE("person", "id") * 2654435761 + {}) % 4294967291, '
    '"id") AS rn FROM "crm_marketing_campaign_recipient" WHERE "campaign" = {} AND "state" = \'queued\') r '
    'WHERE r."id" = "crm_marketing_campaign_recipient"."id"'
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _whole(values: Mapping[str, Any], key: str, default: int, top: int) -> int:
    raw = values.get(key)
    if raw in (None, ""):
        return default
    try:
        number = int(str(raw).strip())
    except ValueError:
        raise ValidationError({key: N_("must be a whole number")}) from None
    if not 0 <= number <= top:
        raise ValidationError({key: N_("must be between 0 and %(top)s") % {"top": top}})
    return number


def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """The UTM code and A/B settings of a campaign checked (422 naming the field)."""
    from crm_marketing import personalization

    out: dict[str, Any] = {"utm_campaign": " ".join(str(values.get("utm_campaign") or "").split())}
    if len(out["utm_campaign"]) > 100:
        raise ValidationError({"utm_campaign": N_("is longer than %(limit)s characters") % {"limit": 100}})
    for key in ("subject_b_en", "subject_b_zh"):
        out[key] = str(values.get(key) or "")
        if len(out[key]) > 300:
            raise ValidationError({key: N_("is longer than %(limit)s characters") % {"limit": 300}})
        personalization.check(out[key], key)
    out["ab_share"] = _whole(values, "ab_share", 0, MAX_SHARE)
    out["ab_wait_hours"] = _whole(values, "ab_wait_hours", 4, MAX_WAIT_HOURS)
    if out["ab_share"] and not (out["subject_b_en"] or out["subject_b_zh"]):
        raise ValidationError({"subject_b_en": N_("an A/B test needs a subject B")})
    if out["ab_share"] and out["ab_wait_hours"] < 1:
        raise ValidationError({"ab_wait_hours": N_("must be between 1 and %(top)s") % {"top": MAX_WAIT_HOURS}})
    return out


def variant_texts(campaign: Mapping[str, Any], variant: str) -> Mapping[str, Any]:
    """The campaign as a recipient of ``variant`` gets it: subject B for ``b``, and for the rest once B won."""
    if variant == "b" or (variant == "rest" and campaign.get("ab_winner") == "b"):
        return {**campaign, "subject_en": campaign["subject_b_en"] or campaign["subject_en"],
                "subject_zh": campaign["subject_b_zh"] or campaign["subject_zh"]}
    return campaign


async def split(campaign_id: int, share: int) -> int:
    """Split the queued recipients of a campaign being sent (see the module's docstring); how many are tested."""
    total = await CampaignRecipient.count().where(
        (CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.state == "queued"))
    tested = max(2, round(int(total) * share / 100)) if total >= 3 else int(total)
    await CampaignRecipient.raw(_SPLIT_SQL, tested, tested, campaign_id * 7919, campaign_id)
    await Campaign.update({Campaign.ab_state: "testing"}).where(Campaign.id == campaign_id)
    return tested


async def results(campaign_id: int) -> dict[str, dict[str, int]]:
    """Per variant (a, b): recipients, people who opened and who clicked (scanner hits excluded)."""
    out = {v: {"recipients": 0, "opens": 0, "clicks": 0} for v in ("a", "b")}
    for r in await CampaignRecipient.select(CampaignRecipient.variant).where(
        (CampaignRecipient.campaign == campaign_id) & CampaignRecipient.variant.is_in(["a", "b"])
    ):
        out[r["variant"]]["recipients"] += 1
    seen: set[tuple[int, str]] = set()
    for r in await CampaignEvent.select(
        CampaignEvent.recipient, CampaignEvent.kind, CampaignEvent.recipient.variant.as_alias("variant")
    ).where(
        (CampaignEvent.campaign == campaign_id) & CampaignEvent.is_scanner.eq(False)
        & CampaignEvent.kind.is_in(["open", "click"]) & CampaignEvent.recipient.variant.is_in(["a", "b"])
    ):
        if (int(r["recipient"]), r["kind"]) not in seen:
            seen.add((int(r["recipient"]), r["kind"]))
            out[r["variant"]]["opens" if r["kind"] == "open" else "clicks"] += 1
    return out


def winner(stats: Mapping[str, Mapping[str, int]]) -> str:
    """The higher open rate, then the higher click rate; A on a tie."""
    for measure in ("opens", "clicks"):
        rate = {v: Fraction(s[measure], s["recipients"]) if s["recipients"] else Fraction(0) for v, s in stats.items()}
        if rate["a"] != rate["b"]:
            return "a" if rate["a"] > rate["b"] else "b"
    return "a"


async def decide(campaign_id: int) -> str | None:
    """Choose the winner and send it to the rest; None when another run did it already."""
    from crm_marketing.campaigns import BATCH

    chosen = winner(await results(campaign_id))
    async with db.atomic():
        won = await Campaign.update({Campaign.ab_state: "decided", Campaign.ab_winner: chosen}).where(
            (Campaign.id == campaign_id) & (Campaign.ab_state == "testing")).returning(Campaign.id)
        if not won:
            return None
        batches_before = -(-await CampaignRecipient.count().where(
            (CampaignRecipient.campaign == campaign_id) & CampaignRecipient.variant.is_in(["a", "b"])) // BATCH)
        ids = sorted(int(r["id"]) for r in await CampaignRecipient.update({CampaignRecipient.state: "queued"}).where(
            (CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.state == "held")
        ).returning(CampaignRecipient.id))
        for start in range(0, len(ids), BATCH):
            part = ids[start:start + BATCH]
            await jobs.enqueue("crm_marketing.send_batch", dedup_key=f"campaign-{campaign_id}-{part[0]}",
                               campaign_id=campaign_id, first_id=part[0], last_id=part[-1],
                               index=batches_before + start // BATCH)
        if not ids and not await CampaignRecipient.exists().where(
            (CampaignRecipient.campaign == campaign_id) & CampaignRecipient.state.is_in(["queued", "sending"])
        ):  # no one was held back and the test's batches are over: so is the campaign
            await Campaign.update({Campaign.state: "sent"}).where(
                (Campaign.id == campaign_id) & (Campaign.state == "sending"))
        await audit.record("update", model=CAMPAIGN, record_id=campaign_id,
                           detail=f"A/B test: subject {chosen.upper()} won, sent to {len(ids)} more recipients")
    return chosen


async def decide_due() -> int:
    """Decide every test whose wait is over (the scheduled actor's work); how many were decided."""
    now = _now()
    decided = 0
    for row in await Campaign.select(Campaign.id, Campaign.sent_at, Campaign.ab_wait_hours).where(
        Campaign.ab_state == "testing"
    ):
        sent_at = row["sent_at"]
        if sent_at is None:
            continue
        sent_at = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=dt.UTC)
        if sent_at + dt.timedelta(hours=int(row["ab_wait_hours"])) <= now and await decide(int(row["id"])):
            decided += 1
    return decided
