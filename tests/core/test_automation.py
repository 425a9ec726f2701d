"""Automation rules (core.automation) over crm_sales' deals, on SQLite and PostgreSQL: record events from the
generic write path and from crm_sales' own, time-based triggers scanned in SQL, the actions, once per (rule, event)
under redelivery and killed workers, loop protection, the run log, the dry run, and the admin JSON API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from core import db, jobs, outbox
from core.automation import events, registry, rules, runs, scans
from core.automation.models import AutomationRule, AutomationRun
from core.errors import ValidationError
from core.models import Notification, Outbox
from core.security import principal
from core.security.access import Access, policy
from core.testing import login_client, make_user

OPP = "crm_sales.opportunity"


async def _drain(limit: int = 50) -> int:
    """Run every pending automation job in the outbox, in order, here (as a worker would); returns how many."""
    done = 0
    for _ in range(limit):
        rows = await Outbox.select(Outbox.id, Outbox.actor).where(
            (Outbox.state == "pending") & Outbox.actor.like("core.automation%")).order_by(Outbox.id)
        if not rows:
            return done
        for row in rows:
            try:
                await outbox.run_job(jobs.spec(row["actor"]), int(row["id"]))
            except Exception:  # noqa: S110 (Dramatiq would retry it later; the test sends it again)
                return done
            done += 1
    return done


async def _admin() -> Any:
    uid = await make_user("root", "admin")
    return await principal.load(uid, implied=policy().implied)


async def _deal(owner: int | None, name: str = "Deal", **values: Any) -> int:
    from crm_sales import pipeline

    return await pipeline.create_opportunity({"name": name, "owner": owner, **values}, user_id=owner)


async def _rule(who: Any, **data: Any) -> int:
    saved = await rules.create(who, {"model": OPP, "is_active": True, "name": data.pop("name", "rule"), **data})
    return int(saved["id"])


def _notify(title: str = "Deal {{ record.name }} won") -> dict[str, Any]:
    return {"kind": "notify", "params": {"to": "owner", "title_en": title, "title_zh": "赢单：{{ record.name }}"}}


@pytest.fixture
def crm_settings(crm_settings: Any) -> Any:
    return crm_settings.with_(webhook_allow_networks="127.0.0.1/32")  # the local receiver of the webhook tests


@pytest.fixture
async def sales(crm_boot: Any) -> dict[str, Any]:
    await crm_boot("crm_sales")
    rep = await make_user("rep", "sales_rep")
    return {"admin": await _admin(), "rep": rep,
            "rep_access": Access(await principal.load(rep, implied=policy().implied))}


async def test_a_stage_move_to_won_notifies_and_tags_once(sales: dict[str, Any]) -> None:
    from crm_sales import pipeline
    from crm_sales.models import Opportunity

    rule_id = await _rule(sales["admin"], name="Won deals",
                          trigger={"type": "changed", "field": "state", "to": "won"},
                          actions=[_notify(), {"kind": "add_tag", "params": {"tag": "won"}}])
    opp_id = await _deal(sales["rep"], "Servers")
    await _drain()
    assert await AutomationRun.count() == 0  # created open: the trigger wants "won"
    await pipeline.mark_won(sales["rep_access"], opp_id)
    await _drain()
    run = await AutomationRun.select().where(AutomationRun.rule_id == rule_id).first()
    assert run["state"] == "done", run["error"]
    assert run["record_id"] == opp_id and run["trigger"] == "updated"
    note = await Notification.select().where(Notification.user_id == sales["rep"]).first()
    assert note["title"] == "Deal Servers won" and note["url"] == f"/sales/opportunities/{opp_id}"
    tags = (await Opportunity.select(Opportunity.tags).where(Opportunity.id == opp_id).first())["tags"]
    assert "won" in (json.loads(tags) if isinstance(tags, str) else tags)
    # the broker delivers the event again, a worker retries the job: nothing happens twice
    event = await Outbox.select(Outbox.id, Outbox.payload).where(Outbox.actor == "core.automation_event").order_by(
        Outbox.id, ascending=False).first()
    payload = event["payload"] if isinstance(event["payload"], dict) else json.loads(event["payload"])
    for change in payload["events"]:
        await events.handle(**change)
    await Outbox.update({Outbox.state: "pending"}).where(Outbox.id == event["id"])
    await _drain()
    assert await AutomationRun.count().where(AutomationRun.rule_id == rule_id) == 1
    assert await Notification.count().where(Notification.user_id == sales["rep"]) == 1
    log = await rules.runs(sales["admin"], rule_id)
    assert log[0]["result"][0].startswith("notified user(s)") and log[0]["result"][1].startswith("tags")


async def test_a_killed_worker_resumes_after_the_last_action_done(sales: dict[str, Any]) -> None:
    from crm_sales.models import Opportunity

    rule_id = await _rule(sales["admin"], trigger={"type": "created"},
                          actions=[{"kind": "add_tag", "params": {"tag": "first"}},
                                   _notify("Second {{ record.name }}")])
    opp_id = await _deal(sales["rep"], "Kill")
    # the worker took the event, inserted the run, did the first action and died: running, lease run out
    event = await Outbox.select(Outbox.id, Outbox.payload).where(Outbox.actor == "core.automation_event").first()
    change = (event["payload"] if isinstance(event["payload"], dict) else json.loads(event["payload"]))["events"][0]
    await AutomationRun.insert(AutomationRun(
        rule_id=rule_id, key=f"{rule_id}:ev:{change['event']}", model=OPP, record_id=opp_id, trigger="created",
        snapshot=change["after"], state="running", step=1, result=["tags: [] → ['first'] (before the kill)"],
        lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    await Outbox.update({Outbox.state: "running", Outbox.lease_until: dt.datetime.now(dt.UTC)}).where(
        Outbox.id == event["id"])
    await outbox.sweep(stale_seconds=0, fresh_seconds=0)  # the sweep sends it again; here we run it
    await Outbox.update({Outbox.state: "pending"}).where(Outbox.id == event["id"])
    await _drain()
    run = await AutomationRun.select().where(AutomationRun.rule_id == rule_id).first()
    assert run["state"] == "done" and run["step"] == 2
    tags = (await Opportunity.select(Opportunity.tags).where(Opportunity.id == opp_id).first())["tags"]
    assert "first" not in (json.loads(tags) if isinstance(tags, str) else tags)  # step 1 was not done again
    assert await Notification.count().where(Notification.title == "Second Kill") == 1


async def test_a_rules_own_writes_do_not_retrigger_it_and_depth_is_limited(sales: dict[str, Any]) -> None:
    first = await _rule(sales["admin"], name="region", trigger={"type": "updated"},
                        actions=[{"kind": "set_field", "params": {"field": "region", "value": "华南"}}])
    second = await _rule(sales["admin"], name="industry", trigger={"type": "changed", "field": "region"},
                         actions=[{"kind": "set_field", "params": {"field": "industry", "value": "retail"}}])
    opp_id = await _deal(sales["rep"], "Loop")
    await _drain()
    from crm_sales.models import Opportunity

    await Opportunity.update({Opportunity.source: "web"}).where(Opportunity.id == opp_id)
    async with db.atomic():
        before = await Opportunity.select().where(Opportunity.id == opp_id).first()
        await events.record_changed(OPP, opp_id, {**before, "source": ""}, {"source": "web"})
    await _drain()
    row = await Opportunity.select(Opportunity.region, Opportunity.industry).where(Opportunity.id == opp_id).first()
    assert row == {"region": "华南", "industry": "retail"}
    states = {(r["rule_id"], r["depth"], r["state"]) for r in await AutomationRun.select(
        AutomationRun.rule_id, AutomationRun.depth, AutomationRun.state)}
    # region's write triggered industry (1 deep) and itself (skipped); industry's write reached region (skipped)
    assert (first, 0, "done") in states and (second, 1, "done") in states
    assert (first, 1, "skipped") in states and (first, 2, "skipped") in states
    assert not [s for s in states if s[1] >= events.MAX_DEPTH and s[2] != "skipped"]


async def test_the_generic_write_path_reports_and_costs_nothing_without_rules(crm_client: Any) -> None:
    from core.security.sessions import create_token

    client = await crm_client("crm_sales")
    root = await make_user("root", "admin")
    client.headers["Authorization"] = f"Bearer {await create_token(root, 'test', roles=['admin'])}"
    made = await client.post("/api/sales/activities", json={"subject": "Call", "due_at": "2030-01-01T09:00:00Z"})
    assert made.status_code == 201, made.text
    assert await Outbox.count().where(Outbox.actor == "core.automation_event") == 0
    answer = await client.post("/api/admin/automation/rules", json={
        "name": "New calls", "model": "crm_sales.activity", "trigger": {"type": "created"}, "is_active": True,
        "condition": {"field": "kind", "op": "eq", "value": "call"},
        "actions": [{"kind": "notify", "params": {"to": "owner", "title_en": "Call: {{ record.subject }}"}}]})
    assert answer.status_code == 201, answer.text
    rule_id = answer.json()["id"]
    made = await client.post("/api/sales/activities", json={"subject": "Ring", "kind": "call",
                                                            "due_at": "2030-01-01T09:00:00Z"})
    assert made.status_code == 201
    assert await Outbox.count().where(Outbox.actor == "core.automation_event") == 1  # one event, not two
    await _drain()
    log = (await client.get(f"/api/admin/automation/rules/{rule_id}/runs")).json()["items"]
    assert [(r["state"], r["record_id"]) for r in log] == [("done", made.json()["id"])]
    assert await Notification.count().where(Notification.title == "Call: Ring") == 1


async def test_idle_deals_are_found_in_sql_once_per_idle_spell(sales: dict[str, Any]) -> None:
    from crm_sales.models import Activity, Opportunity

    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=3)
    idle = await _deal(sales["rep"], "Idle", stage_entered_at=old)
    busy = await _deal(sales["rep"], "Busy", stage_entered_at=old)
    fresh = await _deal(sales["rep"], "Fresh", stage_entered_at=now)
    won = await _deal(sales["rep"], "Closed", stage_entered_at=old, state="won")
    await Activity.insert(Activity(subject="call", due_at=now, opportunity=busy,
                                   created_at=now - dt.timedelta(hours=2)))
    rule_id = await _rule(sales["admin"], trigger={"type": "idle", "hours": 48},
                          condition={"field": "state", "op": "eq", "value": "open"},
                          actions=[_notify("Idle {{ record.name }}")])
    dry = await rules.dry_run(sales["admin"], rule_id)
    assert [r["id"] for r in dry["records"]] == [idle] and dry["count"] == 1
    rule = (await registry.rules(force=True))[rule_id]
    assert await scans.scan(rule_id, now - dt.timedelta(minutes=1), now) == 1
    await _drain()
    assert await Notification.count().where(Notification.title == "Idle Idle") == 1
    later = now + dt.timedelta(minutes=5)
    assert await scans.scan(rule_id, now, later) == 0  # still the same idle spell: once
    # an activity after the rule acted, then idle again past 48 h: a new spell
    await Activity.insert(Activity(subject="visit", due_at=now, opportunity=idle, created_at=now + dt.timedelta(
        hours=1), done_at=None))
    assert await scans.scan(rule_id, later, later + dt.timedelta(minutes=1)) == 0
    far = now + dt.timedelta(days=3)
    assert await scans.scan(rule_id, far - dt.timedelta(minutes=1), far) == 3
    by_record = [r["record_id"] for r in await AutomationRun.select(AutomationRun.record_id).order_by(AutomationRun.id)]
    assert by_record[0] == idle and sorted(by_record[1:]) == sorted([idle, busy, fresh]) and won not in by_record
    assert rule.trigger.type == "idle"
    assert await Opportunity.count() == 4


async def test_time_after_a_date_and_the_tick_claims_each_window_once(sales: dict[str, Any]) -> None:
    from crm_sales.models import Opportunity

    today = dt.date.today()
    due = await _deal(sales["rep"], "Due", expected_close=today - dt.timedelta(days=1))
    await _deal(sales["rep"], "Later", expected_close=today + dt.timedelta(days=30))
    rule_id = await _rule(sales["admin"], trigger={"type": "time_after", "field": "expected_close", "hours": 0},
                          actions=[{"kind": "set_field", "params": {"field": "probability", "value": 5}}])
    await AutomationRule.update({AutomationRule.scanned_until: dt.datetime.now(dt.UTC) - dt.timedelta(days=3)}).where(
        AutomationRule.id == rule_id)
    assert await scans.tick() == [rule_id]
    assert await scans.tick() == []  # the window is taken: a second scheduler (or tick) does nothing
    await _drain()
    assert (await Opportunity.select(Opportunity.probability).where(Opportunity.id == due).first())["probability"] == 5
    assert [r["record_id"] for r in await AutomationRun.select(AutomationRun.record_id)] == [due]


async def test_daily_rules_fire_once_a_day_at_their_time(sales: dict[str, Any]) -> None:
    rule_id = await _rule(sales["admin"], trigger={"type": "daily", "at": "00:00"},
                          actions=[_notify("Daily {{ record.name }}")])
    await _deal(sales["rep"], "Every day")
    rule = (await registry.rules(force=True))[rule_id]
    now = dt.datetime.now(dt.UTC)
    moment = scans.daily_moment("00:00", now)
    assert scans.window(rule, moment - dt.timedelta(hours=1), now) == (moment - dt.timedelta(hours=1), moment)
    assert scans.window(rule, moment, now) is None
    assert await scans.scan(rule_id, moment - dt.timedelta(days=1), moment) == 1
    assert await scans.scan(rule_id, moment - dt.timedelta(days=1), moment) == 0
    await _drain()
    assert await Notification.count().where(Notification.title == "Daily Every day") == 1


class _Hook(BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Hook.seen.append((self.headers["Idempotency-Key"], body))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hook_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.seen, _Hook.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


async def test_webhooks_carry_an_idempotency_key_and_retry_then_fail(sales: dict[str, Any], hook_url: str) -> None:
    rule_id = await _rule(sales["admin"], trigger={"type": "created"},
                          actions=[{"kind": "webhook", "params": {"url": hook_url, "timeout": 5}}])
    opp_id = await _deal(sales["rep"], "Hooked")
    await _drain()
    key, body = _Hook.seen[0]
    assert body["record_id"] == opp_id and body["record"]["name"] == "Hooked" and key.startswith("automation:")
    _Hook.status = 503
    await _deal(sales["rep"], "Down")
    for _ in range(runs.MAX_ATTEMPTS + 1):
        await Outbox.update({Outbox.state: "pending", Outbox.attempts: 0}).where(
            (Outbox.actor == "core.automation_event") & (Outbox.state != "done"))
        await _drain()
    failed = await AutomationRun.select().where((AutomationRun.rule_id == rule_id) & (AutomationRun.state == "failed"))
    assert len(failed) == 1 and "503" in failed[0]["error"]
    assert len({k for k, _ in _Hook.seen[1:]}) == 1  # every attempt of one run: the same key


async def test_rules_are_checked_strictly_naming_the_path(sales: dict[str, Any]) -> None:
    admin = sales["admin"]
    cases = [
        ({"condition": {"field": "stagee", "op": "eq", "value": 1}}, "condition.field"),
        ({"condition": {"all": [{"field": "state", "op": "near", "value": "x"}]}}, "condition.all[0].op"),
        ({"actions": [{"kind": "explode"}]}, "actions[0].kind"),
        ({"actions": [{"kind": "webhook", "params": {"url": "file:///etc/passwd"}}]}, "actions[0].params.url"),
        ({"actions": [{"kind": "webhook", "params": {"url": "http://10.9.8.7/hook"}}]}, "actions[0].params.url"),
        ({"actions": [{"kind": "set_field", "params": {"field": "state", "value": "won"}}]}, "actions[0].params.field"),
        ({"actions": [{"kind": "set_field", "params": {"field": "probability", "value": "x"}}]},
         "actions[0].params.value"),
        ({"actions": [_notify("{{ record.name ")]}, "actions[0].params.title_en"),
        ({"actions": [{"kind": "require_approval"}]}, "actions[0].params.action"),
        ({"trigger": {"type": "sometimes"}}, "trigger.type"),
        ({"trigger": {"type": "time_after", "field": "name", "hours": 1}}, "trigger.field"),
        ({"trigger": {"type": "daily", "at": "25:00"}}, "trigger.at"),
        ({"trigger": {"type": "idle", "hours": 48}, "condition": {"field": "state", "op": "changed"}},
         "condition.op"),
        ({"model": "crm_sales.nothing"}, "model"),
        ({"colour": "red"}, "colour"),
    ]
    for extra, path in cases:
        data = {"name": "bad", "model": OPP, "trigger": {"type": "created"}, "actions": [_notify()], **extra}
        with pytest.raises(ValidationError) as exc:
            await rules.create(admin, data)
        assert path in exc.value.fields, (extra, exc.value.fields)
    with pytest.raises(ValidationError) as exc:  # deals have no approvable action that runs by itself
        await rules.create(admin, {"name": "x", "model": OPP, "trigger": {"type": "created"},
                                   "actions": [{"kind": "require_approval", "params": {"action": "core.delete"}}]})
    assert "runs by itself once approved" in exc.value.fields["actions[0].params.action"]


async def test_admin_api_and_pages_are_for_administrators(crm_client: Any) -> None:
    from core.security.sessions import create_token

    client = await crm_client("crm_sales")
    await make_user("rep", "sales_rep")
    root = await make_user("root", "admin")
    await login_client(client, "rep")
    assert (await client.get("/api/admin/automation/rules")).status_code == 403
    assert (await client.get("/admin/automation")).status_code == 403
    client.cookies.clear()
    await login_client(client, "root")
    client.headers["Authorization"] = f"Bearer {await create_token(root, 'test', roles=['admin'])}"
    bad = await client.post("/api/admin/automation/rules", json={"name": "x", "model": OPP,
                                                                 "trigger": {"type": "created"}, "actions": [],
                                                                 "condition": {"field": "x", "op": "eq", "value": 1}})
    assert bad.status_code == 422 and "condition.field" in bad.json()["error"]["fields"]
    made = await client.post("/api/admin/automation/rules", json={
        "name": "Idle", "model": OPP, "trigger": {"type": "idle", "days": 2}, "actions": [_notify()]})
    assert made.status_code == 201 and made.json()["trigger"] == {"type": "idle", "hours": 48}
    rule = made.json()
    assert not rule["is_active"]
    assert (await client.post(f"/api/admin/automation/rules/{rule['id']}/enable")).json()["is_active"]
    stale = await client.patch(f"/api/admin/automation/rules/{rule['id']}", json={"name": "Renamed",
                                                                                  "version": rule["version"]})
    assert stale.status_code == 409
    dry = await client.post(f"/api/admin/automation/rules/{rule['id']}/dry-run")
    assert dry.status_code == 200 and dry.json()["trigger"] == "idle"
    schema = (await client.get("/api/admin/automation/schema", params={"model": OPP})).json()
    assert "person.province" in [f["field"] for f in schema["fields"]]
    assert "crm_sales.create_activity" in [a["kind"] for a in schema["actions"]]
    for path in ("/admin/automation", "/admin/automation/new", f"/admin/automation/{rule['id']}",
                 f"/admin/automation/{rule['id']}/runs", f"/admin/automation/{rule['id']}/dry-run"):
        page = await client.get(path)
        assert page.status_code == 200, (path, page.text[:300])


async def test_create_activity_comes_from_crm_sales(sales: dict[str, Any]) -> None:
    from crm_sales.models import Activity

    await _rule(sales["admin"], trigger={"type": "created"}, actions=[{"kind": "crm_sales.create_activity", "params": {
        "kind": "call", "subject": "Call about {{ record.name }}", "due_in_hours": 4}}])
    opp_id = await _deal(sales["rep"], "Fresh lead")
    await _drain()
    act = await Activity.select().where(Activity.opportunity == opp_id).first()
    assert act["subject"] == "Call about Fresh lead" and act["kind"] == "call" and act["owner"] == sales["rep"]


async def test_jobs_run_on_the_in_process_worker(sales: dict[str, Any]) -> None:
    from crm_sales import pipeline

    await _rule(sales["admin"], trigger={"type": "changed", "field": "state", "to": "won"}, actions=[_notify()])
    worker = jobs.start_worker(2)
    try:
        opp_id = await _deal(sales["rep"], "Live")
        await pipeline.mark_won(sales["rep_access"], opp_id)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if await Notification.count().where(Notification.title == "Deal Live won"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the rule did not run")
    finally:
        worker.stop()


async def test_crm_contacts_bulk_changes_reach_rules(sales: dict[str, Any]) -> None:
    from crm_contacts.models import Person
    from crm_contacts.services import bulk_update

    await rules.create(sales["admin"], {
        "name": "New customer", "model": "crm_contacts.person", "is_active": True,
        "trigger": {"type": "changed", "field": "stage", "to": "customer"},
        "actions": [{"kind": "notify", "params": {"to": "owner", "title_en": "Customer: {{ record.name }}"}}]})
    row = await Person.insert(Person(name="Han Mei", owner=sales["rep"], stage="prospect")).returning(Person.id)
    manager = await make_user("boss", "sales_manager")
    acc = Access(await principal.load(manager, implied=policy().implied))
    boss = Access(await principal.load(await make_user("root2", "admin"), implied=policy().implied))
    await bulk_update(boss, "crm_contacts.person", [row[0]["id"]], {"stage": "customer"})
    await _drain()
    assert await Notification.count().where(Notification.title == "Customer: Han Mei") == 1
    assert acc.can("crm_contacts.person")
