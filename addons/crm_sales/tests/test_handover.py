"""When an employee leaves (issue 18 §4): deactivating them hands their records over — to one user, spread over a
team, or kept — in one audited, idempotent background job that reports to the receivers and the admin."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from typing import Any

from crm_sales import activities
from crm_sales.models import Activity, Lead, Opportunity
from sales_helpers import Org, build_org, new_deal

from core import jobs, outbox
from core.models import Notification, Outbox
from core.security import handover, principal
from core.security.access import policy
from core.security.handover import Plan
from core.security.models import AuditLog, User
from core.testing import csrf_of, login_client, make_user

ACTIVITY, LEAD, DEAL, PERSON = "crm_sales.activity", "crm_sales.lead", "crm_sales.opportunity", "crm_contacts.person"


async def _book(org: Org, login: str, deals: int = 2) -> dict[str, int]:
    """``login`` gets ``deals`` deals (each with its lead and person), one open and one done activity."""
    rep = await org.acc(login)
    for i in range(deals):
        await new_deal(rep, f"{login} deal {i}")
    due = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    open_id = await activities.create_activity(rep, {"subject": "Call back", "due_at": due})
    done_id = await activities.create_activity(rep, {"subject": "Met", "due_at": due})
    await activities.mark_done(rep, done_id)
    return {"open": open_id, "done": done_id}


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {k["model"]: k["count"] for k in rows if k["count"]}


async def _job(key: str) -> int:
    row = await Outbox.select(Outbox.id).where(Outbox.dedup_key == f"{handover.ACTOR}:{key}").first()
    assert row is not None, "no transfer job was asked for"
    return int(row["id"])


async def _run(key: str) -> None:
    await outbox.run_job(jobs.spec(handover.ACTOR), await _job(key))


async def _admin(login: str = "boss") -> Any:
    uid = await make_user(login, "admin")
    return await principal.load(uid, implied=policy().implied)


async def _told(user_id: int) -> list[dict[str, Any]]:
    return list(await Notification.select().where(Notification.user_id == user_id).order_by(Notification.id))


def _moved(report: dict[str, Any]) -> tuple[Any, ...]:
    return report["total"], report["kinds"], report["receivers"]


async def test_transfer_to_a_user_moves_open_work_keeps_done_activities_and_reports_once(org: Org) -> None:
    rep1, rep2 = org.ids["rep1"], org.ids["rep2"]
    booked = await _book(org, "rep1")
    boss = await _admin()
    owned = _counts(await handover.owned(rep1))
    assert owned == {PERSON: 2, LEAD: 2, DEAL: 2, ACTIVITY: 1}  # the done activity does not count
    dry = await handover.preview(Plan(rep1, "user", to_user=rep2))
    assert dry["total"] == 7 and [(r["login"], r["gets"]) for r in dry["receivers"]] == [("rep2", 7)]
    assert (await User.select(User.is_active).where(User.id == rep1).first())["is_active"]  # a dry run changes nothing

    key = await handover.start(Plan(rep1, "user", to_user=rep2), by=boss)
    assert not (await User.select(User.is_active).where(User.id == rep1).first())["is_active"]
    version = (await Opportunity.select(Opportunity.version).where(Opportunity.owner == rep1).first())["version"]
    await _run(key)

    assert _counts(await handover.owned(rep1)) == {}
    assert await Lead.count().where(Lead.owner == rep2) == 2
    assert {r["version"] for r in await Opportunity.select(Opportunity.version)} == {version + 1}
    acts = {r["id"]: r["owner"] for r in await Activity.select(Activity.id, Activity.owner)}
    assert acts[booked["open"]] == rep2 and acts[booked["done"]] == rep1  # done work stays with who did it
    report = await handover.report(rep1, key)
    assert report["state"] == "done" and report["total"] == 7 and report["remaining"] == []
    assert {k["model"]: k["count"] for k in report["kinds"]} == owned
    assert [(r["login"], r["total"]) for r in report["receivers"]] == [("rep2", 7)]
    batches = await AuditLog.select(AuditLog.model, AuditLog.user_login).where(
        (AuditLog.action == "transfer") & (AuditLog.record_id == key))
    assert {b["model"] for b in batches} == set(owned) and {b["user_login"] for b in batches} == {"boss"}
    got = await _told(rep2)
    assert len(got) == 1 and "7" in got[0]["title"] and "Leads: 2" in got[0]["body"]
    mine = await _told(boss.user_id)
    assert len(mine) == 1 and mine[0]["url"] == handover.report_url(rep1, key) and "Open activities: 1" in mine[0][
        "body"]

    # a retried or repeated job moves nothing twice, audits nothing more, tells nobody again, reports the same
    again = await handover.transfer(Plan(rep1, "user", to_user=rep2), key, boss.user_id)
    assert _moved(again) == _moved(report)
    assert await AuditLog.count().where((AuditLog.action == "transfer") & (AuditLog.record_id == key)) == len(batches)
    assert len(await _told(rep2)) == 1 and len(await _told(boss.user_id)) == 1


async def test_spread_over_a_team_balances_by_current_load_and_skips_inactive_members(org: Org) -> None:
    from core.security.users import create_team, set_active, update_team

    rep1, rep2, rep3 = org.ids["rep1"], org.ids["rep2"], org.ids["rep3"]
    gone = await make_user("gone", "sales_rep")
    team = await create_team("Inside sales", members=[rep1, rep2, rep3, gone])
    await set_active(gone, False)
    await _book(org, "rep1")  # 7 records to hand over
    await new_deal(await org.acc("rep2"), "rep2's own")  # rep2 already owns a person, a lead and a deal
    plan = Plan(rep1, "team", team=team, strategy="balanced")
    dry = await handover.preview(plan)
    assert [(r["login"], r["load"], r["gets"]) for r in dry["receivers"]] == [("rep2", 3, 2), ("rep3", 0, 5)]
    key = await handover.start(plan, by=await _admin())
    await _run(key)
    assert await handover.loads(await handover.kinds(), [rep2, rep3]) == {rep2: 5, rep3: 5}
    assert _counts(await handover.owned(gone)) == {} and _counts(await handover.owned(rep1)) == {}
    report = await handover.report(rep1, key)
    assert [(r["login"], r["total"]) for r in report["receivers"]] == [("rep2", 2), ("rep3", 5)]
    # round-robin deals in turn, whatever the load: rep3's 5 records over rep2 and a newcomer
    newcomer = await make_user("newcomer", "sales_rep")
    await update_team(team, leader=None, members=[rep2, rep3, newcomer])
    rr = await handover.preview(Plan(rep3, "team", team=team, strategy="round_robin"))
    assert [(r["login"], r["gets"]) for r in rr["receivers"]] == [("rep2", 3), ("newcomer", 2)]


async def test_keep_deactivates_and_moves_nothing(org: Org) -> None:
    rep1 = org.ids["rep1"]
    await _book(org, "rep1", deals=1)
    before = _counts(await handover.owned(rep1))
    key = await handover.start(Plan(rep1, "keep"), by=await _admin())
    assert not (await User.select(User.is_active).where(User.id == rep1).first())["is_active"]
    assert await Outbox.count().where(Outbox.actor == handover.ACTOR) == 0
    assert _counts(await handover.owned(rep1)) == before
    report = await handover.report(rep1, key)
    assert report["state"] == "kept" and report["total"] == 0 and _counts(report["remaining"]) == before


async def test_a_plan_that_cannot_go_on_fails_for_good_and_tells_the_admin(org: Org) -> None:
    from core.security.users import set_active

    rep1, rep2 = org.ids["rep1"], org.ids["rep2"]
    await _book(org, "rep1", deals=1)
    boss = await _admin()
    key = await handover.start(Plan(rep1, "user", to_user=rep2), by=boss)
    await set_active(rep2, False)  # the receiver left too before the job ran
    await _run(key)
    report = await handover.report(rep1, key)
    assert report["state"] == "failed" and "to_user" in report["error"] and report["total"] == 0
    told = await _told(boss.user_id)
    assert [n["kind"] for n in told] == ["error"] and handover.ACTOR in told[0]["title"]


async def _wait_done(user_id: int, key: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await handover.report(user_id, key)
        if found["state"] in ("done", "failed"):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("the transfer did not finish in time")


async def test_admin_pages_dry_run_then_deactivate_and_read_the_report(crm_client: Any) -> None:
    client = await crm_client("crm_sales")
    org = await build_org(client._transport.app.state.runtime)
    rep1, rep2 = org.ids["rep1"], org.ids["rep2"]
    await _book(org, "rep1")
    await make_user("boss", "admin")
    await login_client(client, "boss")
    page = await client.get(f"/admin/users/{rep1}")
    assert f'action="/admin/users/{rep1}/deactivate"' in page.text
    form = await client.get(f"/admin/users/{rep1}/deactivate")
    assert form.status_code == 200
    assert re.search(r'data-model="crm_sales.lead">.*?class="count">2<', form.text, re.S)
    csrf = csrf_of(form.text)
    choice = {"csrf_token": csrf, "mode": "team", "team": str(org.team_a), "strategy": "balanced"}
    dry = await client.post(f"/admin/users/{rep1}/deactivate", data=choice | {"step": "preview"})
    assert dry.status_code == 200 and 'data-receiver="rep2"' in dry.text and "7" in dry.text
    assert (await User.select(User.is_active).where(User.id == rep1).first())["is_active"]
    bad = await client.post(f"/admin/users/{rep1}/deactivate", data={"csrf_token": csrf, "mode": "user",
                                                                      "step": "confirm"})
    assert bad.status_code == 422 and (await User.select(User.is_active).where(User.id == rep1).first())["is_active"]
    done = await client.post(f"/admin/users/{rep1}/deactivate", data=choice | {"step": "confirm"})
    assert done.status_code == 303
    url = done.headers["location"]
    key = url.rsplit("/", 1)[1]
    worker = jobs.start_worker(1)
    try:
        report = await _wait_done(rep1, key)
    finally:
        worker.stop()
    assert report["state"] == "done" and [(r["login"], r["total"]) for r in report["receivers"]] == [("rep2", 7)]
    shown = await client.get(url)
    assert shown.status_code == 200 and 'data-state="done"' in shown.text and 'data-receiver="rep2"' in shown.text
    assert await Lead.count().where(Lead.owner == rep2) == 2
    boss_id = (await User.select(User.id).where(User.login == "boss").first())["id"]
    assert [n["url"] for n in await _told(boss_id)] == [url]


async def test_json_api_dry_run_deactivate_and_report_admins_only(crm_client: Any) -> None:
    client = await crm_client("crm_sales")
    org = await build_org(client._transport.app.state.runtime)
    rep1, rep3 = org.ids["rep1"], org.ids["rep3"]
    await _book(org, "rep1", deals=1)
    await make_user("boss", "admin")

    # a non-admin gets 403 on the page and on the API, and nothing happens
    await login_client(client, "rep3")
    csrf = csrf_of((await client.get("/account/preferences")).text)
    assert (await client.get(f"/admin/users/{rep1}/deactivate")).status_code == 403
    refused = await client.post(f"/api/admin/users/{rep1}/deactivate", json={"mode": "keep"},
                                headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and refused.json()["error"]["code"]
    assert (await client.get(f"/api/admin/users/{rep1}/owned-records")).status_code == 403
    assert (await User.select(User.is_active).where(User.id == rep1).first())["is_active"]
    assert await AuditLog.count().where(AuditLog.action == "denied") >= 3

    client.cookies.clear()
    await login_client(client, "boss")
    headers = {"X-CSRF-Token": csrf_of((await client.get("/account/preferences")).text)}
    owned = await client.get(f"/api/admin/users/{rep1}/owned-records")
    assert owned.status_code == 200 and _counts(owned.json()["kinds"])[LEAD] == 1
    invalid = await client.post(f"/api/admin/users/{rep1}/deactivate", json={"mode": "user"}, headers=headers)
    assert invalid.status_code == 422 and "to_user" in invalid.json()["error"]["fields"]
    dry = await client.post(f"/api/admin/users/{rep1}/deactivate", headers=headers,
                            json={"mode": "user", "to_user": rep3, "dry_run": True})
    assert dry.status_code == 200 and dry.json()["total"] == 4
    started = await client.post(f"/api/admin/users/{rep1}/deactivate", headers=headers,
                                json={"mode": "user", "to_user": rep3})
    assert started.status_code == 202, started.text
    await _run(started.json()["transfer"])
    report = await client.get(started.json()["report"])
    assert report.status_code == 200 and report.json()["state"] == "done" and report.json()["total"] == 4
    assert report.json()["receivers"][0]["login"] == "rep3"
    assert (await client.get(f"/api/admin/users/{rep1}/transfers/nope")).status_code == 404


def test_cli_deactivate_to_a_user_or_keep(crm_boot: Any, crm_settings: Any, monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from core.cli.users import users_group

    async def seed() -> dict[str, int]:
        org = await build_org(await crm_boot("crm_sales"))
        await _book(org, "rep1", deals=1)
        await _book(org, "rep3", deals=1)
        return org.ids

    ids = asyncio.run(seed())
    monkeypatch.setenv("CRM_DATABASE_URL", crm_settings.database_url)
    monkeypatch.setenv("CRM_DATA_DIR", str(crm_settings.data_dir))
    cli = CliRunner()
    both = cli.invoke(users_group, ["deactivate", "rep1", "--to", "rep2", "--keep"])
    assert both.exit_code == 2 and "exactly one of" in both.output
    dry = cli.invoke(users_group, ["deactivate", "rep1", "--team", "Team A", "--dry-run"])
    assert dry.exit_code == 0 and "4 record(s) would change owner" in dry.output and "rep2" in dry.output
    moved = cli.invoke(users_group, ["deactivate", "rep1", "--to", "rep2"])
    assert moved.exit_code == 0, moved.output
    assert ": done, 4 record(s) moved" in moved.output and "→ rep2" in moved.output
    kept = cli.invoke(users_group, ["deactivate", "rep3", "--keep"])
    assert kept.exit_code == 0 and "kept, 0 record(s) moved" in kept.output and "still owned" in kept.output
    unknown = cli.invoke(users_group, ["deactivate", "rep2", "--to", "nobody"])
    assert unknown.exit_code == 1 and "no user with login 'nobody'" in unknown.output

    async def check() -> tuple[int, int, list[bool]]:
        active = [r["is_active"] for r in await User.select(User.is_active).where(
            User.id.is_in([ids["rep1"], ids["rep2"], ids["rep3"]])).order_by(User.id)]
        return (await Lead.count().where(Lead.owner == ids["rep2"]),
                await Lead.count().where(Lead.owner == ids["rep3"]), active)

    assert asyncio.run(check()) == (1, 1, [False, True, False])


async def test_assignment_rules_give_a_deactivated_member_no_new_lead(org: Org) -> None:
    from crm_sales import leads
    from crm_sales.models import AssignmentMember, AssignmentRule

    rule = (await AssignmentRule.insert(AssignmentRule(name="All", sequence=1, strategy="round_robin")).returning(
        AssignmentRule.id))[0]["id"]
    for login in ("rep1", "rep2"):
        await AssignmentMember.insert(AssignmentMember(rule=rule, user=org.ids[login], capacity=0))
    await handover.start(Plan(org.ids["rep1"], "keep"), by=await _admin())
    manager = await org.acc("manager")
    made = [await leads.create_lead(manager, {"name": f"L{i}"}) for i in range(3)]
    owners = {r["owner"] for r in await Lead.select(Lead.owner).where(Lead.id.is_in(made))}
    assert owners == {org.ids["rep2"]}
