"""Re-driving a cancelled order's refused cancellation behind an approval (core.approvals): the finance user's
re-drive waits for the named approver, then runs by itself as them; a push re-drive no rule covers goes at once."""

from __future__ import annotations

from typing import Any

import pytest
from erp_bridge.approvals import REDRIVE, check_redrive
from erp_bridge.backends.fake import FakeBackend
from erp_bridge.manifest import BINDING
from erp_bridge.models import Binding
from erp_helpers import binding, customer, drain, order

from core import jobs, outbox
from core.approvals import ApprovalPending, decide, rules
from core.models import Notification, Outbox
from core.security import principal
from core.security.access import Access, policy
from core.security.models import AuditLog
from core.testing import csrf_of, login_client, make_user


async def _who(user_id: int) -> Any:
    return await principal.load(user_id, implied=policy().implied)


async def test_a_cancelled_orders_redrive_waits_for_the_approver(fake: FakeBackend) -> None:
    import httpx

    from core.app import create_app
    from core.runtime import current

    ids = {"root": await make_user("root", "admin"), "fin": await make_user("fin", "finance"),
           "boss": await make_user("boss")}
    await rules.create(await _who(ids["root"]), {"name": "Cancellations", "action": REDRIVE,
                                                 "condition": {"field": "operation", "op": "eq", "value": "cancel"},
                                                 "steps": [{"approver": "user", "user": "boss"}]})
    cancelled, pushed = await order(await customer()), await order(await customer("北京 Beta"))
    await drain()
    refused = await binding(cancelled)
    await Binding.update({Binding.state: "failed", Binding.operation: "cancel",
                          Binding.last_error: "the ERP document changed"}).where(Binding.id == refused["id"])
    await Binding.update({Binding.state: "failed"}).where(Binding.id == (await binding(pushed))["id"])

    app = create_app(runtime=current(), run_jobs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        await login_client(client, "fin")
        token = csrf_of((await client.get("/")).text)
        held = await client.post(f"/api/erp/bindings/{refused['id']}/redrive", headers={"X-CSRF-Token": token})
        assert held.status_code == 202 and "Boss" in held.json()["error"]["message"], held.text
        page = await client.post(f"/erp/bindings/{refused['id']}/redrive", data={"csrf_token": token})
        assert page.status_code == 303 and page.headers["location"].startswith("/approvals/")
        done = await client.post(f"/api/erp/bindings/{(await binding(pushed))['id']}/redrive",
                                 headers={"X-CSRF-Token": token})
        assert done.status_code == 200 and done.json()["state"] == "in_flight"
    assert (await binding(cancelled))["state"] == "failed"

    request_id = int(page.headers["location"].rsplit("/", 1)[1])
    with pytest.raises(ApprovalPending):  # asked again: the same request, nothing re-driven
        await check_redrive(Access(await _who(ids["fin"])), refused["id"])
    await decide(await _who(ids["boss"]), request_id, True, "reviewed the ERP's version")
    for job in await Outbox.select(Outbox.id).where(Outbox.actor == "core.perform_approved"):
        await outbox.run_job(jobs.spec("core.perform_approved"), job["id"])
    assert (await binding(cancelled))["state"] == "in_flight"
    redrives = await AuditLog.select(AuditLog.user_id).where(
        (AuditLog.action == "redrive") & (AuditLog.model == BINDING) & (AuditLog.record_id == str(refused["id"])))
    assert [r["user_id"] for r in redrives] == [ids["fin"]]
    told = await Notification.select(Notification.title).where(Notification.user_id == ids["fin"])
    assert any(n["title"].startswith("Approved and done") for n in told), told
