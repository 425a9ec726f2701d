"""Background jobs of crm_marketing (idempotent: a job may run twice)."""

from __future__ import annotations

from core.jobs import actor


@actor("crm_marketing.send_batch", max_retries=5, min_backoff_ms=2000)
async def send_batch(campaign_id: int, first_id: int, last_id: int, index: int = 0) -> None:
    from crm_marketing import sending

    await sending.send_batch(campaign_id, first_id, last_id, index)


@actor("crm_marketing.send_scheduled")
async def send_scheduled() -> None:
    from crm_marketing import campaigns

    await campaigns.send_scheduled()


@actor("crm_marketing.rebuild_segments")
async def rebuild_segments() -> None:
    from crm_marketing import segments

    await segments.rebuild_all()


@actor("crm_marketing.build_segment")
async def build_segment(segment_id: int) -> None:
    from crm_marketing import segments

    await segments.build(segment_id)


@actor("crm_marketing.refresh_person")
async def refresh_person(person_id: int) -> None:
    from crm_marketing import segments

    await segments.refresh_person(person_id)


@actor("crm_marketing.refresh_people")
async def refresh_people(person_ids: list[int]) -> None:
    from crm_marketing import freshness

    await freshness.refresh(person_ids)


@actor("crm_marketing.journeys_tick")
async def journeys_tick() -> None:
    from crm_marketing import journeys

    await journeys.tick()


@actor("crm_marketing.decide_ab_tests")
async def decide_ab_tests() -> None:
    from crm_marketing import ab_test

    await ab_test.decide_due()


@actor("crm_marketing.rebuild_rfm")
async def rebuild_rfm() -> None:
    from crm_marketing import rfm

    await rfm.rebuild()


@actor("crm_marketing.fetch_bounces", max_retries=1)
async def fetch_bounces() -> None:
    from crm_marketing import bounces

    await bounces.fetch_configured()


@actor("crm_marketing.date_triggers")
async def date_triggers() -> None:
    from crm_marketing import date_triggers

    await date_triggers.run_all()


@actor("crm_marketing.refresh_returns")
async def refresh_returns(campaign_ids: list[int] | None = None) -> None:
    """The orders attributed to campaigns (the ROI dataset), rebuilt: those given, or every campaign."""
    from crm_marketing import returns

    await returns.refresh(campaign_ids)
