"""The automation action "require approval" (core.approvals.automation) end to end, on SQLite and PostgreSQL: a
rule fires on a new deal → a request in the approver's inbox → approved: the held action runs, as the rule's author;
rejected: it never runs, and the approver's comment is shown on the request and told to the rule's author."""

from __future__ import annotations

from typing import Any

import pytest

from core import jobs, outbox
from core.approvals.models import ApprovalRequest
from core.automation import rules
from core.automation.models import AutomationRun
from core.errors import ValidationError
from core.hooks import ApprovableAction, hookimpl
from core.models import Notification, Outbox
from core.security import principal
from core.security.access import Access, policy
from core.testing import csrf_of, login_client, make_user

OPP = "crm_sales.opportunity"
GO = "crm_testauto.big_deal_go"
performed: list[tuple[int | None, int]] = []


class BigDeals:
    """An approvable action on deals that runs by itself once approved (as an addon would declare it)."""

    @hookimpl
    def crm_approvable_actions(self) -> Any:
        async def go(access: Access, deal_id: int) -> str:
            performed.append((access.principal.user_id if access.principal else None, deal_id))
            return f"deal {deal_id} cleared"

        return [
            ApprovableAction(
                GO,
                "Clear a big deal",
                OPP,
                {"name": "text", "expected_revenue": "money"},
                title="name",
                url="/sales/opportunities/{id}",
                perform=go,
            )
        ]


async def _drain() -> None:
    for _ in range(20):
        rows = (
            await Outbox.select(Outbox.id, Outbox.actor)
            .where(
                (Outbox.state == "pending")
                & (Outbox.actor.like("core.automation%") | (Outbox.actor == "core.perform_approved"))
            )
            .order_by(Outbox.id)
        )
        if not rows:
            return
        for row in rows:
            await outbox.run_job(jobs.spec(row["actor"]), int(row["id"]))


async def test_a_rule_holds_the_action_until_approved_and_a_rejection_stops_it(crm_client: Any) -> None:
    from crm_sales import pipeline

    client = await crm_client("crm_sales")
    from core.runtime import current

    current().plugins.register(BigDeals())
    performed.clear()
    root = await make_user("root", "admin")
    boss = await make_user("boss", "sales_manager")
    rep = await make_user("rep", "sales_rep")
    admin = await principal.load(root, implied=policy().implied)
    with pytest.raises(ValidationError) as bad:
        await rules.create(
            admin,
            {
                "name": "x",
                "model": OPP,
                "trigger": {"type": "created"},
                "actions": [
                    {
                        "kind": "require_approval",
                        "params": {"action": GO, "approvers": [{"approver": "role", "role": "x"}]},
                    }
                ],
            },
        )
    assert "actions[0].params.approvers[0].role" in bad.value.fields
    await rules.create(
        admin,
        {
            "name": "Big deals need the boss",
            "model": OPP,
            "is_active": True,
            "trigger": {"type": "created"},
            "condition": {"field": "expected_revenue", "op": "gte", "value": 100000},
            "actions": [
                {
                    "kind": "require_approval",
                    "params": {
                        "action": GO,
                        "approvers": [{"approver": "role", "role": "sales_manager"}],
                        "note": "Check the margin",
                    },
                }
            ],
        },
    )
    big = await pipeline.create_opportunity(
        {"name": "Big one", "owner": rep, "expected_revenue": "250000"}, user_id=rep
    )
    small = await pipeline.create_opportunity({"name": "Small", "owner": rep, "expected_revenue": "900"}, user_id=rep)
    await _drain()
    assert performed == []  # held
    request = await ApprovalRequest.select().where(ApprovalRequest.record_id == big).first()
    assert request["state"] == "pending" and request["requested_by"] == root
    assert await ApprovalRequest.count().where(ApprovalRequest.record_id == small) == 0  # the condition
    run = (
        await AutomationRun.select(AutomationRun.result, AutomationRun.state)
        .where(AutomationRun.record_id == big)
        .first()
    )
    assert run["state"] == "done" and f"approval request {request['id']}" in str(run["result"])

    # in the boss's inbox; approved there: the held action runs, as the rule's author
    await login_client(client, "boss")
    inbox = await client.get("/approvals")
    assert f'data-decide="{request["id"]}"' in inbox.text and "Big one" in inbox.text
    detail = await client.get(f"/approvals/{request['id']}")
    assert "Check the margin" in detail.text
    answer = await client.post(
        f"/approvals/{request['id']}", data={"csrf_token": csrf_of(detail.text), "decision": "approve", "comment": ""}
    )
    assert answer.status_code == 303
    await _drain()
    assert performed == [(root, big)]

    # a second big deal: rejected with a comment, never run; the comment is on the request and told to the author
    other = await pipeline.create_opportunity(
        {"name": "Risky", "owner": rep, "expected_revenue": "500000"}, user_id=rep
    )
    await _drain()
    second = await ApprovalRequest.select().where(ApprovalRequest.record_id == other).first()
    detail = await client.get(f"/approvals/{second['id']}")
    await client.post(
        f"/approvals/{second['id']}",
        data={"csrf_token": csrf_of(detail.text), "decision": "reject", "comment": "Margin too thin"},
    )
    await _drain()
    assert performed == [(root, big)]
    assert (await ApprovalRequest.select(ApprovalRequest.state).where(ApprovalRequest.id == second["id"]).first())[
        "state"
    ] == "rejected"
    assert "Margin too thin" in (await client.get(f"/approvals/{second['id']}")).text
    told = [r["body"] for r in await Notification.select(Notification.body).where(Notification.user_id == root)]
    assert any("Margin too thin" in body for body in told)
    assert await ApprovalRequest.count() == 2

    # one request per firing, however often the run is retried
    from core.approvals import automation
    from core.hooks import AutomationContext

    ctx = AutomationContext(
        rule_id=1,
        rule_name="Big deals need the boss",
        run_id=0,
        key="retried-firing",
        model=OPP,
        record_id=small,
        record={"name": "Small", "expected_revenue": "900"},
        params={"action": GO, "approvers": [{"approver": "user", "user": boss}], "note": ""},
    )
    first = await automation.run(ctx)
    assert (
        first.startswith("approval request ")
        and await automation.run(ctx) == f"approval request {first.split()[2]} already asked"
    )
    assert await ApprovalRequest.count() == 3
