"""crm_marketing with crm_sales installed: a capture form makes a lead through ``crm_sales.api.create_lead`` with
its UTM codes, and a campaign's leads, won deals and revenue are attributed by last touch and by first touch
(touches: counted clicks and form submissions with its UTM code). The figures are checked against sums computed
here from the rows by the stated rule, on the ROI page and through the API; a role that may not read deals gets
no deal figures (None, not 0)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from crm_contacts.models import Person
from crm_marketing import attribution, forms
from crm_marketing.models import Campaign, CampaignEvent, CampaignRecipient, CaptureForm, FormSubmission
from crm_sales.models import Lead, Opportunity, PipelineStage

from core.security.access import Access, policy
from core.security.principal import load
from core.security.sessions import create_token
from core.testing import login_client, make_user

DAY = dt.timedelta(days=1)


async def _campaign(name: str, code: str) -> int:
    return int((await Campaign.insert(Campaign(name=name, utm_campaign=code, state="sent")))[0]["id"])


async def _click(campaign: int, person: int, at: dt.datetime, scanner: bool = False) -> None:
    rows = await CampaignRecipient.insert(CampaignRecipient(campaign=campaign, person=person, email="x@example.cn",
                                                            state="sent"))
    await CampaignEvent.insert(CampaignEvent(campaign=campaign, recipient=rows[0]["id"], kind="click", at=at,
                                             is_scanner=scanner))


async def _deal(person: int, state: str, closed: dt.datetime, amount: str, currency: str = "CNY") -> int:
    stage = (await PipelineStage.select(PipelineStage.id).first())["id"]
    rows = await Opportunity.insert(Opportunity(name="d", person=person, stage=stage, state=state, closed_at=closed,
                                                expected_revenue=Decimal(amount), currency=currency))
    return int(rows[0]["id"])


def _expected(conversions: list[tuple[int, int, dt.datetime, Decimal, str]],
              touches: list[tuple[int, dt.datetime, int]], model: str) -> dict[int, list[Any]]:
    """The rule spelled out plainly: per campaign [conversion ids, revenue in CNY]."""
    out: dict[int, list[Any]] = {}
    for conv_id, person, at, amount, currency in conversions:
        mine = [(t_at, c) for p, t_at, c in touches if p == person and at - 90 * DAY <= t_at <= at]
        if not mine:
            continue
        campaign = max(mine)[1] if model == "last" else min(mine)[1]
        got = out.setdefault(campaign, [[], Decimal(0)])
        got[0].append(conv_id)
        if currency == "CNY":
            got[1] += amount
    return out


async def test_leads_and_won_deals_attributed_by_last_and_first_touch(crm_client: Any) -> None:
    http = await crm_client("crm_marketing", "crm_sales")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    spring, summer = await _campaign("春季", "Spring"), await _campaign("夏季", "summer")
    form_id = int((await CaptureForm.insert(CaptureForm(
        name="试用申请", fields=[{"field": "name", "required": True}, {"field": "email", "required": True}])))[0]["id"])
    form = await forms.active(form_id)
    assert form is not None

    one = await forms.submit(form, {"name": "陈静", "email": "chen@example.cn", "utm_campaign": "summer"},
                             {"utm_source": "wechat"})
    two = await forms.submit(form, {"name": "刘洋", "email": "liu@example.cn"}, {"utm_campaign": "spring"})
    assert one.lead_id and two.lead_id and one.person_id and two.person_id
    lead = await Lead.select().where(Lead.id == one.lead_id).first()
    assert (lead["email"], lead["utm_campaign"], lead["utm_source"], lead["source"]) == (
        "chen@example.cn", "summer", "wechat", "form")
    p1, p2 = one.person_id, two.person_id
    await FormSubmission.update({FormSubmission.at: now - 10 * DAY}).where(FormSubmission.id == one.submission_id)
    await FormSubmission.update({FormSubmission.at: now - 8 * DAY}).where(FormSubmission.id == two.submission_id)
    p3 = int((await Person.insert(Person(name="王五", email="w@example.cn", email_key="w@example.cn")))[0]["id"])
    await _click(spring, p1, now - 20 * DAY)
    await _click(summer, p2, now - 95 * DAY)  # within 90 days of the lead, not of the deals
    await _click(summer, p3, now - 3 * DAY, scanner=True)  # never a touch
    deals = {
        await _deal(p1, "won", now - 5 * DAY, "1000"): p1,
        await _deal(p2, "won", now - 2 * DAY, "500", "USD"): p2,  # counted, but not CNY revenue
        await _deal(p2, "won", now - 1 * DAY, "300"): p2,
        await _deal(p3, "won", now - 1 * DAY, "9000"): p3,  # no touch: nobody's
    }
    await _deal(p1, "open", now, "7000")  # not won

    # the same rule computed here from the rows
    touches = [(int(r["person"]), r["at"], int(r["campaign"])) for r in await CampaignEvent.select(
        CampaignEvent.recipient.person.as_alias("person"), CampaignEvent.at, CampaignEvent.campaign).where(
        CampaignEvent.is_scanner.eq(False) & (CampaignEvent.kind == "click"))]
    codes = {"spring": spring, "summer": summer}
    touches += [(int(r["person"]), r["at"], codes[r["utm_campaign"].lower()]) for r in
                await FormSubmission.select().where(FormSubmission.utm_campaign != "")]
    conversions_leads = [(int(r["lead_id"]), int(r["person"]), r["at"], Decimal(0), "")
                         for r in await FormSubmission.select().where(FormSubmission.lead_id.is_not_null())]
    conversions_deals = [(int(r["id"]), int(r["person"]), r["closed_at"], r["expected_revenue"], r["currency"])
                         for r in await Opportunity.select().where(Opportunity.state == "won")]

    admin = Access(await load(await make_user("boss", "admin"), implied=policy().implied))
    got = await attribution.attributed(admin)
    for model in ("last", "first"):
        leads, won = _expected(conversions_leads, touches, model), _expected(conversions_deals, touches, model)
        for campaign in (spring, summer):
            credit = got[campaign][model]
            assert sorted(credit.lead_ids) == sorted(leads.get(campaign, [[], 0])[0]), (model, campaign)
            assert credit.leads == len(leads.get(campaign, [[]])[0])
            assert sorted(credit.deal_ids) == sorted(won.get(campaign, [[], 0])[0]), (model, campaign)
            assert credit.won == len(credit.deal_ids)
            assert credit.revenue == won.get(campaign, [[], Decimal(0)])[1]
    # and by hand, so the rule above is not vacuous
    assert (got[summer]["last"].leads, got[summer]["last"].won, got[summer]["last"].revenue) == (1, 1, Decimal(1000))
    assert (got[spring]["last"].leads, got[spring]["last"].won, got[spring]["last"].revenue) == (1, 2, Decimal(300))
    assert (got[spring]["first"].leads, got[spring]["first"].won, got[spring]["first"].revenue) == (
        1, 3, Decimal(1300))
    assert (got[summer]["first"].leads, got[summer]["first"].won) == (1, 0)
    assert set(deals) - {d for c in got.values() for d in c["last"].deal_ids} == {
        d for d, p in deals.items() if p == p3}

    # a role without rights on deals gets leads but no deal figures
    marketing = Access(await load(await make_user("mk", "marketing"), implied=policy().implied))
    theirs = (await attribution.attributed(marketing))[summer]["last"]
    assert (theirs.leads, theirs.won, theirs.revenue) == (1, None, None)

    # the ROI page and the API show the same figures
    await login_client(http, "boss")
    page = (await http.get(f"/marketing/campaigns/{spring}/roi")).text
    assert 'id="attribution-last"' in page and 'id="attribution-first"' in page
    headers = {"Authorization": f"Bearer {await create_token(admin.principal.user_id, 't', roles=['admin'])}"}
    answer = await http.post(f"/api/marketing/campaigns/{spring}/roi", headers=headers)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["attribution"]
    assert shown["last"] == {"leads": 1, "won_deals": 2, "revenue": "300.00"}
    assert shown["first"]["won_deals"] == 3 and Decimal(shown["first"]["revenue"]) == Decimal(1300)
