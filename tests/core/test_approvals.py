"""Approval flows (core.approvals) on the test addons' notes, on SQLite and PostgreSQL: the generic delete held by a
rule, an addon's action with two steps that runs by itself once approved, rules changed under requests, who may
approve (never oneself; the administrators when nobody else), the inbox and the admin JSON API."""

from __future__ import annotations

from typing import Any

import pytest

from core import db, jobs, outbox
from core.approvals import DELETE, ApprovalPending, ApprovalRejected, decide, require, rules
from core.approvals.flow import loaded
from core.approvals.models import ApprovalRequest, ApprovalTask
from core.discovery import Discovered
from core.errors import AddonError, Conflict, PermissionDenied
from core.hooks import ApprovableAction, hookimpl
from core.models import Notification, Outbox
from core.security import principal
from core.security.access import Access, policy
from core.security.models import AuditLog
from core.testing import csrf_of, login_client, make_user

NOTE = "crm_testbase.note"
PUBLISH = "crm_testext.publish"
PERFORMED: list[tuple[int | None, int]] = []


class Publishing:
    """An addon's approvable action (registered on the plugin manager, as an addon's hooks module would be)."""

    @hookimpl
    def crm_approvable_actions(self) -> Any:
        async def publish(access: Access, note_id: int) -> str:
            PERFORMED.append((access.principal.user_id if access.principal else None, note_id))
            return f"note {note_id} published"

        return [ApprovableAction(PUBLISH, "Publish a note", NOTE, {"title": "text", "score": "number",
                                                                   "owner": "reference"},
                                 labels={"score": "Score"}, title="title", url="/notes/{id}", perform=publish)]


async def _access(user_id: int) -> Access:
    return Access(await principal.load(user_id, implied=policy().implied))


async def _note(title: str, owner: int) -> int:
    from crm_testbase.models import Note

    rows = await Note.insert(Note(title=title, owner=owner)).returning(Note.id)
    return int(rows[0]["id"])


@pytest.fixture
async def booted(crm_boot: Any, found: Discovered) -> dict[str, Any]:
    runtime = await crm_boot("crm_testext", found=found)
    runtime.plugins.register(Publishing())
    PERFORMED.clear()
    ids = {"root": await make_user("root", "admin"), "amy": await make_user("amy", "tb_manager"),
           "ben": await make_user("ben", "tb_manager"), "cat": await make_user("cat", "tb_user"),
           "boss": await make_user("boss")}
    return {"runtime": runtime, "ids": ids, "root": (await _access(ids["root"])).principal}


async def _run_jobs() -> None:
    for job in await Outbox.select(Outbox.id).where((Outbox.actor == "core.perform_approved")
                                                    & (Outbox.state == "pending")):
        await outbox.run_job(jobs.spec("core.perform_approved"), job["id"])


async def test_an_addons_action_goes_through_two_steps_in_order_then_runs_as_the_requester(booted: Any) -> None:
    ids = booted["ids"]
    await rules.create(booted["root"], {"name": "Big scores", "action": PUBLISH,
                                        "condition": {"field": "score", "op": "gt", "value": 10},
                                        "steps": [{"approver": "role", "role": "tb_manager"},
                                                  {"approver": "user", "user": "boss"}]})
    cat = await _access(ids["cat"])
    note = await _note("Launch", ids["cat"])
    await require(cat, PUBLISH, NOTE, note, {"title": "Launch", "score": 5, "owner": ids["cat"]})  # no rule matches
    with pytest.raises(ApprovalPending) as held:
        await require(cat, PUBLISH, NOTE, note, {"title": "Launch", "score": 12, "owner": ids["cat"]})
    assert held.value.status == 202 and sorted(held.value.approvers) == ["Amy", "Ben"]
    request_id = held.value.request_id
    # the second step's approver is not asked before the first step is decided
    assert not await Notification.exists().where(Notification.user_id == ids["boss"])
    with pytest.raises(PermissionDenied):
        await decide((await _access(ids["boss"])).principal, request_id, True)
    assert (await decide((await _access(ids["amy"])).principal, request_id, True))["state"] == "pending"
    with pytest.raises(Conflict):  # Ben's task of step 1 was settled by Amy's decision
        await decide((await _access(ids["ben"])).principal, request_id, True)
    told = await Notification.select().where(Notification.user_id == ids["boss"])
    assert [n["url"] for n in told] == [f"/approvals/{request_id}"]
    with pytest.raises(ApprovalPending):
        await require(cat, PUBLISH, NOTE, note, {"title": "Launch", "score": 12, "owner": ids["cat"]})
    assert (await decide((await _access(ids["boss"])).principal, request_id, True, "fine"))["state"] == "approved"
    await _run_jobs()
    await _run_jobs()  # a job run again does the action once
    assert [(ids["cat"], note)] == PERFORMED
    done = await Notification.select().where(Notification.user_id == ids["cat"])
    assert [n["body"] for n in done] == [f"note {note} published"]
    # approved: the same values pass from now on
    await require(cat, PUBLISH, NOTE, note, {"title": "Launch", "score": 12, "owner": ids["cat"]})
    audit = [r["action"] for r in await AuditLog.select(AuditLog.action).where(
        AuditLog.action.like("approval_%")).order_by(AuditLog.id)]
    assert audit == ["approval_request", "approval_approve", "approval_approve"]


async def test_the_generic_delete_asks_and_a_named_user_approves(crm_client: Any, found: Discovered) -> None:
    client = await crm_client("crm_testext", found=found)
    root = (await _access(await make_user("root", "admin"))).principal
    amy, boss = await make_user("amy", "tb_manager"), await make_user("boss")
    await rules.create(root, {"name": "Secret notes", "action": DELETE, "model": NOTE,
                              "condition": {"field": "title", "op": "contains", "value": "secret"},
                              "steps": [{"approver": "user", "user": boss}]})
    plain, secret = await _note("Plain", amy), await _note("Top SECRET plan", amy)
    await login_client(client, "amy")
    token = csrf_of((await client.get("/")).text)
    assert (await client.delete(f"/api/testbase/notes/{plain}", headers={"X-CSRF-Token": token})).status_code == 204
    held = await client.delete(f"/api/testbase/notes/{secret}", headers={"X-CSRF-Token": token})
    assert held.status_code == 409 and held.json()["error"]["code"] == "approval_pending"
    assert "Boss" in held.json()["error"]["message"]
    again = await client.delete(f"/api/testbase/notes/{secret}", headers={"X-CSRF-Token": token})
    assert again.status_code == 409 and await ApprovalRequest.count() == 1
    request_id = int((await ApprovalRequest.select(ApprovalRequest.id).first())["id"])

    client.cookies.clear()
    await login_client(client, "boss")
    page = await client.get(f"/approvals/{request_id}")
    assert page.status_code == 200 and "Top SECRET plan" in page.text and 'data-decide' in page.text
    decided = await client.post(f"/approvals/{request_id}", data={"csrf_token": csrf_of(page.text),
                                                                 "decision": "approve", "comment": "go"})
    assert decided.status_code == 303
    assert await Notification.exists().where((Notification.user_id == amy) & Notification.title.like("Approved%"))

    client.cookies.clear()
    await login_client(client, "amy")
    token = csrf_of((await client.get("/")).text)
    assert (await client.delete(f"/api/testbase/notes/{secret}", headers={"X-CSRF-Token": token})).status_code == 204
    assert await AuditLog.exists().where((AuditLog.action == "delete") & (AuditLog.record_id == str(secret)))


async def test_a_rule_change_alters_no_decided_request(booted: Any) -> None:
    ids = booted["ids"]
    rule = await rules.create(booted["root"], {"name": "Scores", "action": PUBLISH,
                                               "condition": {"field": "score", "op": "gte", "value": 1},
                                               "steps": [{"approver": "user", "user": ids["boss"]}]})
    cat, boss = await _access(ids["cat"]), (await _access(ids["boss"])).principal
    one, two = await _note("One", ids["cat"]), await _note("Two", ids["cat"])
    requests = {}
    for note in (one, two):
        with pytest.raises(ApprovalPending) as held:
            await require(cat, PUBLISH, NOTE, note, {"title": "x", "score": 3, "owner": ids["cat"]})
        requests[note] = held.value.request_id
    await decide(boss, requests[one], True)
    await decide(boss, requests[two], False, "no")
    with pytest.raises(ApprovalRejected, match="no"):
        await require(cat, PUBLISH, NOTE, two, {"title": "x", "score": 3, "owner": ids["cat"]})
    updated = await rules.update(booted["root"], rule["id"], {"steps": [{"approver": "role", "role": "tb_manager"},
                                                                        {"approver": "user", "user": "boss"}]},
                                 rule["version"])
    assert updated["version"] == 2
    with pytest.raises(Conflict):
        await rules.update(booted["root"], rule["id"], {"name": "again"}, 1)  # stale version: refused
    # the approval given under version 1 still holds; the rejection under version 1 makes way for a new request
    await require(cat, PUBLISH, NOTE, one, {"title": "x", "score": 3, "owner": ids["cat"]})
    with pytest.raises(ApprovalPending) as fresh:
        await require(cat, PUBLISH, NOTE, two, {"title": "x", "score": 3, "owner": ids["cat"]})
    rows = {r["id"]: r for r in await ApprovalRequest.select()}
    assert rows[requests[two]]["state"] == "rejected" and rows[requests[two]]["rule_version"] == 1
    fresh_row = rows[fresh.value.request_id]
    assert fresh_row["rule_version"] == 2 and len(loaded(fresh_row["steps"], [])) == 2


async def test_nobody_approves_their_own_request(booted: Any) -> None:
    ids = booted["ids"]
    await rules.create(booted["root"], {"name": "Managers", "action": PUBLISH, "condition": {},
                                        "steps": [{"approver": "user", "user": ids["amy"]}]})
    note = await _note("Mine", ids["amy"])
    with pytest.raises(ApprovalPending) as held:
        await require(await _access(ids["amy"]), PUBLISH, NOTE, note, {"title": "Mine", "owner": ids["amy"]})
    tasks = await ApprovalTask.select(ApprovalTask.user_id, ApprovalTask.via).where(
        ApprovalTask.request_id == held.value.request_id)
    assert [(t["user_id"], t["via"]) for t in tasks] == [(ids["root"], "admin")]
    # the only administrator asking, with nobody else to decide: a clear refusal, nothing recorded
    await ApprovalRequest.delete().where(ApprovalRequest.id > 0)
    await rules.create(booted["root"], {"name": "Root", "action": PUBLISH, "condition": {}, "sequence": 1,
                                        "steps": [{"approver": "user", "user": ids["root"]}]})
    with pytest.raises(Conflict, match="nobody but you"):
        await require(await _access(ids["root"]), PUBLISH, NOTE, note, {"title": "Mine"})
    assert await ApprovalRequest.count() == 0


async def test_team_leader_steps_follow_the_owner(booted: Any) -> None:
    from core.security.users import create_team

    ids = booted["ids"]
    await create_team("North", leader=ids["ben"], members=[ids["cat"]])
    await rules.create(booted["root"], {"name": "Leaders", "action": PUBLISH, "steps": [{"approver": "team_leader"}]})
    note = await _note("Team", ids["cat"])
    with pytest.raises(ApprovalPending) as held:
        await require(await _access(ids["amy"]), PUBLISH, NOTE, note, {"title": "Team", "owner": ids["cat"]})
    assert held.value.approvers == ["Ben"]


async def test_require_refuses_to_record_inside_a_transaction(booted: Any) -> None:
    ids = booted["ids"]
    await rules.create(booted["root"], {"name": "All", "action": PUBLISH, "steps": [{"approver": "team_leader"}]})
    note = await _note("Tx", ids["cat"])
    with pytest.raises(AddonError, match="before the action's transaction"):
        async with db.atomic():
            await require(await _access(ids["cat"]), PUBLISH, NOTE, note, {"title": "Tx"})


async def test_admin_api_checks_rules_and_lists_actions(crm_client: Any, found: Discovered) -> None:
    client = await crm_client("crm_testext", found=found)
    await make_user("root", "admin")
    await make_user("amy", "tb_manager")
    await login_client(client, "amy")
    token = csrf_of((await client.get("/")).text)
    assert (await client.get("/api/admin/approvals/rules")).status_code == 403
    client.cookies.clear()
    await login_client(client, "root")
    token = csrf_of((await client.get("/")).text)
    h = {"X-CSRF-Token": token}
    actions = (await client.get("/api/admin/approvals/actions")).json()["items"]
    delete = next(a for a in actions if a["action"] == DELETE and a["model"] == NOTE)
    assert {f["field"] for f in delete["fields"]} >= {"title", "owner"}
    base = {"name": "Notes", "action": DELETE, "model": NOTE, "steps": [{"approver": "team_leader"}]}
    for body, field in (({**base, "steps": [{"approver": "role", "role": "nope"}]}, "steps[0].role"),
                        ({**base, "steps": []}, "steps"),
                        ({**base, "condition": {"field": "nope", "op": "eq", "value": 1}}, "condition.field"),
                        ({**base, "steps": [{"approver": "user", "user": "ghost"}]}, "steps[0].user"),
                        ({**base, "action": "crm_x.nothing"}, "action")):
        answer = await client.post("/api/admin/approvals/rules", json=body, headers=h)
        assert answer.status_code == 422 and field in answer.json()["error"]["fields"], (field, answer.text)
    made = await client.post("/api/admin/approvals/rules", json={**base, "condition": {
        "field": "title", "op": "contains", "value": "x"}}, headers=h)
    assert made.status_code == 201 and made.json()["version"] == 1, made.text
    rule_id = made.json()["id"]
    stale = await client.patch(f"/api/admin/approvals/rules/{rule_id}", json={"name": "N", "version": 7}, headers=h)
    assert stale.status_code == 409
    renamed = await client.patch(f"/api/admin/approvals/rules/{rule_id}", json={"name": "N", "version": 1}, headers=h)
    assert renamed.json()["version"] == 2 and renamed.json()["name"] == "N"
    assert (await client.get("/admin/approvals")).status_code == 200
    assert (await client.get(f"/admin/approvals/{rule_id}")).status_code == 200
    assert (await client.delete(f"/api/admin/approvals/rules/{rule_id}", headers=h)).status_code == 204
    changes = [r["action"] for r in await AuditLog.select(AuditLog.action).where(
        AuditLog.model == "core.approval_rule").order_by(AuditLog.id)]
    assert changes == ["denied", "create", "update", "delete"]

