"""Quotes behind approvals (core.approvals): a line discount of 20 % under the rule "discount > 15 % → the
team leader" waits for the manager; approved, the quote goes out by itself; rejected, it stays a draft and its
page shows the comment."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sales import acceptance, quotes
from crm_sales.models import Quote
from sales_helpers import new_deal

from core import jobs, outbox
from core.approvals import ApprovalPending, ApprovalRejected, decide, rules
from core.approvals.models import ApprovalRequest, ApprovalTask
from core.models import Notification, Outbox
from core.security import principal
from core.security.access import policy
from core.security.models import AuditLog
from core.testing import csrf_of, login_client, make_user

DISCOUNTED = [{"description": "机架式服务器 Rack server", "quantity": "2", "unit_price": "10000.00",
               "discount_percent": "20", "tax_rate": "0.13"}]
SMALL = [{**DISCOUNTED[0], "discount_percent": "10"}]


async def _rule(condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    admin = await principal.load(await make_user("root", "admin"), implied=policy().implied)
    return await rules.create(admin, {"name": "Big discounts", "action": "crm_sales.quote_discount",
                                      "condition": condition or {"field": "discount", "op": "gt", "value": 15},
                                      "steps": [{"approver": "team_leader"}], **extra})


async def _quote(org: Any, lines: list[dict[str, Any]] = DISCOUNTED) -> tuple[Any, int]:
    rep = await org.acc("rep1")
    opp_id = await new_deal(rep, "Servers", email="buyer@example.com")
    return rep, await quotes.create_quote(rep, opp_id, lines)


async def _run_jobs(actor: str) -> None:
    for job in await Outbox.select(Outbox.id).where((Outbox.actor == actor) & (Outbox.state == "pending")):
        await outbox.run_job(jobs.spec(actor), job["id"])


async def _state(quote_id: int) -> str:
    return str((await Quote.select(Quote.state).where(Quote.id == quote_id).first())["state"])


async def test_a_20_percent_discount_waits_for_the_team_leader_then_goes_out(org: Any) -> None:
    await _rule()
    rep, quote_id = await _quote(org)
    with pytest.raises(ApprovalPending) as held:
        await acceptance.send(rep, quote_id)
    assert held.value.status == 202 and "Manager" in held.value.message and held.value.approvers == ["Manager"]
    assert await _state(quote_id) == "draft"
    assert not await Outbox.exists().where(Outbox.actor == "crm_sales.send_quote_email")
    # asking again neither records a second request nor tells the manager twice
    with pytest.raises(ApprovalPending) as again:
        await acceptance.send(rep, quote_id)
    assert again.value.request_id == held.value.request_id
    assert await ApprovalRequest.count() == 1
    told = await Notification.select().where(Notification.user_id == org.ids["manager"])
    assert [n["url"] for n in told] == [f"/approvals/{held.value.request_id}"]
    assert "Q" in told[0]["title"]
    # a rep of the team cannot decide it
    with pytest.raises(Exception, match="not an approver"):
        await decide((await org.acc("rep2")).principal, held.value.request_id, True)

    manager = (await org.acc("manager")).principal
    assert manager is not None
    answer = await decide(manager, held.value.request_id, True, "OK for this customer")
    assert answer["state"] == "approved"
    await _run_jobs("core.perform_approved")
    assert await _state(quote_id) == "sent"
    assert await Outbox.exists().where(Outbox.actor == "crm_sales.send_quote_email")
    done = await Notification.select().where(Notification.user_id == org.ids["rep1"])
    assert any("sent" in n["body"] for n in done), done
    audit = [(r["action"], r["user_id"]) for r in await AuditLog.select(AuditLog.action, AuditLog.user_id).where(
        (AuditLog.model == "crm_sales.quote") & AuditLog.action.is_in(["approval_request", "approval_approve",
                                                                        "send"])).order_by(AuditLog.id)]
    assert audit == [("approval_request", org.ids["rep1"]), ("approval_approve", org.ids["manager"]),
                     ("send", org.ids["rep1"])]  # sent as the rep who asked
    # the job ran once: running it again sends nothing more
    request = await ApprovalRequest.select().where(ApprovalRequest.id == held.value.request_id).first()
    assert request["performed_at"] is not None and "sent" in request["outcome"]


async def test_a_small_discount_needs_nobody(org: Any) -> None:
    await _rule()
    rep, quote_id = await _quote(org, SMALL)
    await acceptance.send(rep, quote_id)
    assert await _state(quote_id) == "sent" and await ApprovalRequest.count() == 0


async def test_rejected_stays_unsent_and_its_page_shows_the_comment(crm_client: Any) -> None:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    await _rule()
    rep, quote_id = await _quote(org)
    await login_client(client, "rep1")
    page = await client.get(f"/sales/quotes/{quote_id}")
    sent = await client.post(f"/sales/quotes/{quote_id}/send", data={"csrf_token": csrf_of(page.text)})
    assert sent.status_code == 303 and sent.headers["location"].endswith("?approval=pending")
    page = await client.get(sent.headers["location"])
    assert 'data-panel="core_approvals"' in page.text and "awaiting approval by Manager" in page.text

    request_id = int((await ApprovalRequest.select(ApprovalRequest.id).first())["id"])
    client.cookies.clear()
    await login_client(client, "manager")
    inbox = await client.get("/approvals")
    assert inbox.status_code == 200 and f'data-decide="{request_id}"' in inbox.text
    refused = await client.post(f"/approvals/{request_id}", data={"csrf_token": csrf_of(inbox.text),
                                                                 "decision": "reject", "comment": ""})
    assert refused.status_code == 422 and "say why you reject it" in refused.text
    decided = await client.post(f"/approvals/{request_id}", data={
        "csrf_token": csrf_of(inbox.text), "decision": "reject", "comment": "20 % is too much, 15 % at most"})
    assert decided.status_code == 303
    assert await _state(quote_id) == "draft"
    assert not await Outbox.exists().where(Outbox.actor == "core.perform_approved")

    client.cookies.clear()
    await login_client(client, "rep1")
    page = await client.get(f"/sales/quotes/{quote_id}")
    assert "rejected by Manager" in page.text and "20 % is too much, 15 % at most" in page.text
    again = await client.post(f"/sales/quotes/{quote_id}/send", data={"csrf_token": csrf_of(page.text)})
    assert again.headers["location"].endswith("?approval=rejected") and await _state(quote_id) == "draft"
    with pytest.raises(ApprovalRejected, match="15 % at most"):
        await acceptance.send(rep, quote_id)
    # lowering the discount is a new question: 15 % no longer needs one
    await quotes.update_draft(rep, quote_id, [{**DISCOUNTED[0], "discount_percent": "15"}])
    await acceptance.send(rep, quote_id)
    assert await _state(quote_id) == "sent"


async def test_an_approval_holds_only_for_the_values_approved(org: Any) -> None:
    await _rule()
    rep, quote_id = await _quote(org)
    with pytest.raises(ApprovalPending) as first:
        await acceptance.send(rep, quote_id)
    await quotes.update_draft(rep, quote_id, [{**DISCOUNTED[0], "discount_percent": "25"}])
    with pytest.raises(ApprovalPending) as second:
        await acceptance.send(rep, quote_id)
    states = {r["id"]: r["state"] for r in await ApprovalRequest.select(ApprovalRequest.id, ApprovalRequest.state)}
    assert states == {first.value.request_id: "superseded", second.value.request_id: "pending"}
    assert await ApprovalTask.count().where(ApprovalTask.state == "pending") == 1


async def test_the_api_answers_202_and_the_approver_decides_over_json(crm_client: Any) -> None:
    from sales_helpers import build_org

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    await _rule()
    _, quote_id = await _quote(org)
    await login_client(client, "rep1")
    page = await client.get("/")
    held = await client.post(f"/api/sales/quotes/{quote_id}/send", headers={"X-CSRF-Token": csrf_of(page.text)})
    assert held.status_code == 202, held.text
    assert held.json()["error"]["code"] == "approval_pending" and "Manager" in held.json()["error"]["message"]
    mine = (await client.get("/api/approvals", params={"box": "mine"})).json()
    assert [i["state"] for i in mine["items"]] == ["pending"] and mine["items"][0]["waiting_on"] == ["Manager"]
    request_id = mine["items"][0]["id"]
    values = {v["field"]: v["value"] for v in mine["items"][0]["values"]}
    assert values["discount"] == "20" and values["currency"] == "CNY"
    assert (await client.post(f"/api/approvals/{request_id}/approve", json={},
                              headers={"X-CSRF-Token": csrf_of(page.text)})).status_code == 403

    client.cookies.clear()
    await login_client(client, "manager")
    page = await client.get("/")
    assert "/approvals" in page.text  # the menu entry, with the count
    inbox = (await client.get("/api/approvals")).json()
    assert [i["id"] for i in inbox["items"]] == [request_id] and inbox["waiting"] == 1
    approved = await client.post(f"/api/approvals/{request_id}/approve", json={"comment": "ok"},
                                 headers={"X-CSRF-Token": csrf_of(page.text)})
    assert approved.status_code == 200 and approved.json()["state"] == "approved", approved.text
    again = await client.post(f"/api/approvals/{request_id}/approve", json={},
                              headers={"X-CSRF-Token": csrf_of(page.text)})
    assert again.status_code == 409


async def test_a_sending_rule_after_the_discount_rule_asks_next(org: Any) -> None:
    await _rule()
    await _rule_send()
    rep, quote_id = await _quote(org)
    with pytest.raises(ApprovalPending) as discount:
        await acceptance.send(rep, quote_id)
    manager = (await org.acc("manager")).principal
    assert manager is not None
    await decide(manager, discount.value.request_id, True)
    await _run_jobs("core.perform_approved")
    # the held sending ran, and met the second rule: a new request, the rep told why nothing went out yet
    assert await _state(quote_id) == "draft"
    second = await ApprovalRequest.select().where(ApprovalRequest.action == "crm_sales.quote_send").first()
    assert second is not None and second["state"] == "pending"
    told = await Notification.select(Notification.title, Notification.body).where(
        Notification.user_id == org.ids["rep1"])
    assert [n["title"].split(":")[0] for n in told] == ["Approved, but not done"] and "Fin" in told[0]["body"]
    await decide((await org.acc("fin")).principal, int(second["id"]), True)
    await _run_jobs("core.perform_approved")
    assert await _state(quote_id) == "sent"


async def _rule_send() -> dict[str, Any]:
    from core.security.models import User

    root = await User.select(User.id).where(User.login == "root").first()
    admin = await principal.load(int(root["id"]), implied=policy().implied)
    return await rules.create(admin, {"name": "Big quotes", "action": "crm_sales.quote_send",
                                      "condition": {"field": "total", "op": "gt", "value": "10000"},
                                      "steps": [{"approver": "user", "user": "fin"}]})
