"""Outgoing webhooks (core.webhooks) against a local receiver on 127.0.0.1 (allowed through
CRM_WEBHOOK_ALLOW_NETWORKS), on SQLite and PostgreSQL: record and addon events signed and delivered as the
subscription's owner sees them (masked stays masked), the delivery log, a receiver answering 500 and one that
times out (retries with backoff, disabled after N failures in a row, owner told), re-drive, refused targets,
the admin JSON API and pages."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from core import jobs, outbox
from core.errors import RetryLater, ValidationError
from core.models import Notification, Outbox
from core.security.sessions import create_token
from core.testing import login_client, make_user
from core.webhooks import delivery, signing, subscriptions, targets
from core.webhooks.models import WebhookDelivery, WebhookSubscription

PERSON = "crm_contacts.person"


class Receiver:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.got.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if self.path == "/slow":
                    time.sleep(3)
                status = 500 if self.path == "/fail" else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    thread = threading.Thread(target=found.server.serve_forever, daemon=True)
    thread.start()
    yield found
    found.server.shutdown()


@pytest.fixture
def crm_settings(crm_settings: Any) -> Any:
    return crm_settings.with_(webhook_allow_networks="127.0.0.1/32", webhook_timeout_seconds=1, webhook_max_failures=3)


async def _setup(crm_boot: Any) -> dict[str, Any]:
    from core.security import principal
    from core.security.access import policy

    await crm_boot("crm_contacts")
    admin = await make_user("root", "admin")
    viewer = await make_user("viewer", "marketing")  # sees phones and e-mails masked
    return {"admin": await principal.load(admin, implied=policy().implied), "viewer": viewer}


async def _pending_jobs() -> list[int]:
    rows = (
        await Outbox.select(Outbox.id)
        .where((Outbox.state == "pending") & (Outbox.actor == "core.webhook_deliver"))
        .order_by(Outbox.id)
    )
    return [int(r["id"]) for r in rows]


async def _run_jobs() -> None:
    for outbox_id in await _pending_jobs():
        await outbox.run_job(jobs.spec("core.webhook_deliver"), outbox_id)


async def test_record_and_addon_events_are_signed_and_masked_for_the_owner(crm_boot: Any, receiver: Receiver) -> None:
    from crm_contacts import api as contacts

    ctx = await _setup(crm_boot)
    sub = await subscriptions.create(
        ctx["admin"],
        {
            "name": "ERP",
            "url": f"{receiver.url}/ok",
            "owner": ctx["viewer"],
            "events": [f"{PERSON}.created", "crm_contacts_person_created"],
        },
    )
    assert sub["secret"].startswith("whsec_")
    receiver.got.clear()
    ref, created = await contacts.find_or_create_person(name="Li Lei", phone="13812345678", email="li@example.com")
    assert created
    await _run_jobs()
    hits = [g for g in receiver.got if g["path"] == "/ok"]
    assert len(hits) == 1 and json.loads(hits[0]["body"])["data"] == {"person_id": ref.id}
    assert hits[0]["headers"]["X-CRM-Event"] == "crm_contacts_person_created"
    assert signing.verify(sub["secret"], hits[0]["headers"][signing.HEADER], hits[0]["body"])
    assert not signing.verify("whsec_other", hits[0]["headers"][signing.HEADER], hits[0]["body"])
    assert not signing.verify(
        sub["secret"], hits[0]["headers"][signing.HEADER], hits[0]["body"], now=time.time() + signing.REPLAY_WINDOW + 5
    )  # replayed too late
    # a record created through the generic API: the owner's field rules apply to the payload
    await create_record_via_api(ctx, receiver)
    hits = [g for g in receiver.got if g["headers"].get("X-CRM-Event") == f"{PERSON}.created"]
    assert len(hits) == 1, [g["headers"].get("X-CRM-Event") for g in receiver.got]
    data = json.loads(hits[0]["body"])["data"]
    assert data["name"] == "Han Meimei" and "13900001111" not in json.dumps(data) and "*" in data["phone"]
    assert "search_text" not in data
    # many records changed in one transaction: each sent, read for the owner in one query
    from crm_contacts.models import Person

    from core import db
    from core.automation import record_changed

    await subscriptions.create(
        ctx["admin"],
        {"name": "bulk", "url": f"{receiver.url}/ok", "owner": ctx["viewer"], "events": [f"{PERSON}.updated"]},
    )
    people = [int(r["id"]) for r in await Person.select(Person.id)]
    async with db.atomic():
        for person_id in people:
            await record_changed(PERSON, person_id, {"id": person_id}, {"name": "x"})
    await _run_jobs()
    updated = [json.loads(g["body"]) for g in receiver.got if g["headers"].get("X-CRM-Event") == f"{PERSON}.updated"]
    assert sorted(u["record_id"] for u in updated) == sorted(people) and len(people) == 2
    assert all(u["data"]["id"] == u["record_id"] and "*" in (u["data"]["phone"] or "*") for u in updated)
    log = await subscriptions.deliveries(ctx["admin"], sub["id"])
    assert {d["state"] for d in log} == {"delivered"} and all(d["status_code"] == 200 for d in log)
    assert all(d["response_ms"] is not None and d["attempts"] == 1 for d in log)


async def test_an_automation_rule_sends_records_to_a_webhook(crm_boot: Any, receiver: Receiver) -> None:
    from core.automation import rules

    ctx = await _setup(crm_boot)
    sub = await subscriptions.create(
        ctx["admin"],
        {"name": "ERP", "url": f"{receiver.url}/ok", "owner": ctx["viewer"], "events": [f"{PERSON}.deleted"]},
    )
    await rules.create(
        ctx["admin"],
        {
            "model": PERSON,
            "is_active": True,
            "name": "new people to the ERP",
            "trigger": {"type": "created"},
            "actions": [{"kind": "send_to_webhook", "params": {"subscription_id": sub["id"]}}],
        },
    )
    with pytest.raises(ValidationError):
        await rules.create(
            ctx["admin"],
            {
                "model": PERSON,
                "name": "x",
                "trigger": {"type": "created"},
                "actions": [{"kind": "send_to_webhook", "params": {"subscription_id": 999}}],
            },
        )
    receiver.got.clear()
    await create_record_via_api(ctx, receiver)
    for _ in range(5):  # the rule's event, its run, then the delivery: each job as a worker would run it
        for row in await Outbox.select(Outbox.id, Outbox.actor).where(Outbox.state == "pending").order_by(Outbox.id):
            await outbox.run_job(jobs.spec(row["actor"]), int(row["id"]))
    hits = [g for g in receiver.got if g["headers"].get("X-CRM-Event", "").startswith("automation.rule_")]
    assert len(hits) == 1, [g["headers"].get("X-CRM-Event") for g in receiver.got]
    body = json.loads(hits[0]["body"])
    assert body["data"]["name"] == "Han Meimei" and "13900001111" not in hits[0]["body"].decode()
    assert signing.verify(sub["secret"], hits[0]["headers"][signing.HEADER], hits[0]["body"])


async def create_record_via_api(ctx: dict[str, Any], receiver: Receiver) -> None:
    import httpx

    from core.app import create_app
    from core.runtime import current

    token = await create_token(ctx["admin"].user_id, "t", roles=["admin"])
    app = create_app(runtime=current(), run_jobs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        answer = await client.post(
            "/api/contacts/people",
            json={"name": "Han Meimei", "phone": "13900001111"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 201, answer.text
    await _run_jobs()


async def test_failing_and_slow_receivers_retry_then_disable_and_redrive(crm_boot: Any, receiver: Receiver) -> None:
    from crm_contacts import api as contacts

    ctx = await _setup(crm_boot)
    failing = await subscriptions.create(
        ctx["admin"], {"name": "Broken", "url": f"{receiver.url}/fail", "events": ["crm_contacts_person_created"]}
    )
    slow = await subscriptions.create(
        ctx["admin"], {"name": "Slow", "url": f"{receiver.url}/slow", "events": ["crm_contacts_person_created"]}
    )
    await contacts.find_or_create_person(name="Wang Wu", phone="13700000000")
    rows = {r["subscription_id"]: int(r["id"]) for r in await WebhookDelivery.select()}
    # the slow receiver: no answer within the timeout (1 s here), tried again after the first backoff
    with pytest.raises(RetryLater) as waited:
        await delivery.deliver(rows[slow["id"]])
    assert waited.value.delay == delivery.backoff(1) == 30
    row = await WebhookDelivery.select().where(WebhookDelivery.id == rows[slow["id"]]).first()
    assert row["state"] == "pending" and row["status_code"] is None and "no answer within 1 s" in row["error"]
    assert 900 <= row["response_ms"] < 2900
    # the failing one: 500, 500, 500 → disabled at the third failure in a row, its owner told
    for attempt in (1, 2):
        with pytest.raises(RetryLater) as waited:
            await delivery.deliver(rows[failing["id"]])
        assert waited.value.delay == delivery.backoff(attempt)
    assert delivery.backoff(2) == 60 and delivery.backoff(20) == delivery.MAX_BACKOFF
    assert (await delivery.deliver(rows[failing["id"]])).startswith("failed: answered 500")
    row = await WebhookDelivery.select().where(WebhookDelivery.id == rows[failing["id"]]).first()
    assert row["state"] == "failed" and row["attempts"] == 3 and row["status_code"] == 500
    sub = await WebhookSubscription.select().where(WebhookSubscription.id == failing["id"]).first()
    assert not sub["is_active"] and "3 failed attempts" in sub["disabled_reason"]
    note = await Notification.select().where(Notification.user_id == ctx["admin"].user_id).first()
    assert note is not None and "Broken" in note["title"] and note["url"] == f"/admin/webhooks/{failing['id']}"
    # nothing more goes to a disabled subscription, and a re-drive waits until it is enabled again
    await contacts.find_or_create_person(name="Zhao Liu", phone="13600000000")
    assert await WebhookDelivery.count().where(WebhookDelivery.subscription_id == failing["id"]) == 1
    with pytest.raises(Exception, match="enable it first"):
        await subscriptions.redrive(ctx["admin"], rows[failing["id"]])
    fixed = await subscriptions.update(
        ctx["admin"], failing["id"], {"url": f"{receiver.url}/ok", "is_active": True}, sub["version"]
    )
    assert fixed["is_active"] and fixed["consecutive_failures"] == 0
    receiver.got.clear()
    await subscriptions.redrive(ctx["admin"], rows[failing["id"]])
    await _run_jobs()
    row = await WebhookDelivery.select().where(WebhookDelivery.id == rows[failing["id"]]).first()
    assert row["state"] == "delivered" and row["status_code"] == 200
    first = [g for g in receiver.got if g["path"] == "/ok"]
    assert len(first) == 1 and first[0]["headers"]["X-CRM-Event-Id"] == row["event_id"]


async def test_targets_admin_api_and_pages(crm_client: Any, receiver: Receiver) -> None:
    with pytest.raises(ValidationError) as refused:
        await targets.check("http://127.0.0.1:9/hook", "")
    assert "private or loopback" in refused.value.fields["url"]
    for bad in (
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "ftp://example.com/x",
        "http://user:pw@example.com/x",
    ):
        with pytest.raises(ValidationError):
            await targets.check(bad, "127.0.0.1/32")
    client = await crm_client("crm_contacts")
    root = await make_user("root", "admin")
    await make_user("rep", "sales_rep")
    await login_client(client, "root")
    headers = {"Authorization": f"Bearer {await create_token(root, 'test', roles=['admin'])}"}
    bad = await client.post(
        "/api/admin/webhooks", json={"name": "x", "url": "http://10.1.2.3/h", "events": ["nope"]}, headers=headers
    )
    assert bad.status_code == 422, bad.text
    assert set(bad.json()["error"]["fields"]) == {"url", "events"}
    made = await client.post(
        "/api/admin/webhooks",
        json={"name": "Hook", "url": f"{receiver.url}/ok", "events": [f"{PERSON}.deleted"]},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    sub_id = made.json()["id"]
    listed = (await client.get("/api/admin/webhooks")).json()
    assert listed["items"][0]["deliveries"]["pending"] == 0 and f"{PERSON}.updated" in listed["events"]
    assert "secret" not in listed["items"][0]
    off = await client.post(f"/api/admin/webhooks/{sub_id}/disable", headers=headers)
    assert off.status_code == 200 and off.json()["is_active"] is False
    for lang in ("en", "zh-CN"):
        client.cookies.set("crm_lang", lang)
        for path in (
            "/admin/webhooks",
            f"/admin/webhooks/{sub_id}",
            f"/admin/webhooks/{sub_id}/deliveries",
            "/admin/webhooks/new",
        ):
            page = await client.get(path, headers={"Accept-Language": lang})
            assert page.status_code == 200, (path, page.text[:300])
    page = await client.get("/admin/webhooks", headers={"Accept-Language": "zh-CN"})
    assert "Hook" in page.text
    rep = await crm_client("crm_contacts")
    await login_client(rep, "rep")
    assert (await rep.get("/api/admin/webhooks")).status_code == 403
    assert (await rep.get("/admin/webhooks")).status_code == 403
