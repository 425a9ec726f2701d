"""The demo data: a sent campaign with opens and clicks, a segment whose stored members are what its condition
selects (a rebuild changes nothing), a draft campaign that previews with a real contact."""

from __future__ import annotations

from typing import Any

import pytest
from crm_marketing import campaigns, roi, segments
from crm_marketing.models import Campaign, Segment, SegmentMember

from core import data, lifecycle
from core.discovery import discover
from core.security.access import Access, policy
from core.security.models import User
from core.security.principal import load
from core.security.users import create_user
from core.testing import make_user


# the demo is the same CSV files on either database: loaded on SQLite only, to keep the suite's time
@pytest.mark.parametrize("crm_db_url", ["sqlite"], indirect=True)
async def test_demo_shows_a_sent_campaign_with_opens_and_clicks(crm_boot: Any) -> None:
    await crm_boot()  # kernel only: demo users first, as `crm demo` does
    for role in ("sales_rep", "sales_manager"):
        user_id = await create_user(role, role.title(), "Demo-Pass-2026!", roles=[role])
        await data.bind("core", f"user_{role}", User, user_id)
    await lifecycle.install(["crm_marketing"], discover(), demo=True)
    await crm_boot()
    sent = await Campaign.select().where(Campaign.state == "sent").first()
    figures = await roi.figures(sent["id"])
    assert figures["recipients"] == figures["delivered"] > 20
    assert 0 < figures["clicks"] < figures["opens"] < figures["delivered"] and figures["scanner_hits"] > 0
    segment = await Segment.select().where(Segment.is_static.eq(False)).first()
    before = sorted(
        r["person"]
        for r in await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment["id"])
    )
    assert (await segments.build(segment["id"]))["count"] == len(before) == segment["member_count"]
    assert (
        sorted(
            r["person"]
            for r in await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment["id"])
        )
        == before
    )
    mk = Access(await load(await make_user("mk", "marketing"), implied=policy().implied))
    draft = await Campaign.select().where(Campaign.state == "draft").first()
    shown = await campaigns.preview(mk, draft["id"], before[0])
    assert "诚邀您参加新品发布会" in shown["html"] or "product launch" in shown["html"]
    # a running journey with people at different steps (and one who left at the condition)
    from crm_marketing import journeys
    from crm_marketing.models import Journey

    journey = await Journey.select().where(Journey.is_active.eq(True)).first()
    steps = journeys.loaded(journey["steps"], [])
    assert await journeys.check_steps(steps) == steps  # the demo is a journey the checks accept as it is
    assert await journeys.check_trigger(journeys.loaded(journey["trigger"], {})) == journeys.loaded(
        journey["trigger"], {}
    )
    figures = await journeys.funnel(journey["id"], steps)
    assert len([s for s in figures["steps"] if s["here"]]) >= 2 and figures["done"] >= 1
    assert figures["steps"][1]["left"] >= 1 and figures["total"] == figures["steps"][0]["reached"]
    # a capture form with UTM-coded submissions (touches of the sent campaign's code) and a honeypot hit
    from crm_marketing import attribution, forms
    from crm_marketing.models import CaptureForm, FormSubmission

    form = await CaptureForm.select().first()
    assert await forms.check({**form, "fields": forms.loaded(form["fields"], [])})
    assert (await forms.counts([form["id"]]))[form["id"]] == {"submissions": 3, "spam": 1}
    found = await attribution.touches({r["person"] for r in await SegmentMember.select(SegmentMember.person)} | {
        int(r["person"]) for r in await FormSubmission.select(FormSubmission.person).where(
            FormSubmission.person.is_not_null())})
    assert any(campaign == sent["id"] for times in found.values() for _, campaign in times)
