"""Asking and deciding: :func:`require` holds an action until its approvers approve, :func:`decide` records one
approver's decision and moves the request on.

- The requester never approves their own request. A step that names nobody else (no team leader, a role nobody
  else holds, a deactivated user) goes to the administrators.
- The approvers of a step are resolved when the step begins (roles and teams as they are then); the first of
  them to decide decides the step for all.
- Each step is audited (``approval_request``, ``approval_approve``, ``approval_reject``, ``approval_supersede``
  on the record's model), and the people concerned are notified in their own language.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from core import conditions, db, i18n, notifications
from core.approvals import registry
from core.approvals.approvers import approvers, names
from core.approvals.models import ApprovalRequest, ApprovalRule, ApprovalTask
from core.db import json_column
from core.errors import AddonError, Conflict, CrmError, NotFound, PermissionDenied, ValidationError
from core.hooks import ApprovableAction, Notification
from core.i18n import N_
from core.security import audit
from core.security.access import Access, policy
from core.security.models import User
from core.security.principal import Principal

log = logging.getLogger("crm.approvals")
SOURCE = "core.approvals"
MAX_COMMENT = 2000


class ApprovalPending(Conflict):
    """The action waits for an approval (recorded, approvers told). 202 when it will run by itself once
    approved (the action declares ``perform``), 409 when the requester does it again then."""

    code = "approval_pending"

    def __init__(self, message: str, *, request_id: int, approvers: Sequence[str], performs: bool) -> None:
        super().__init__(message, request_id=request_id)
        self.request_id = request_id
        self.approvers = list(approvers)
        self.status = 202 if performs else 409


class ApprovalRejected(Conflict):
    """An approver rejected the action for these very values: change the record to ask again."""

    status = 409
    code = "approval_rejected"

    def __init__(self, message: str, *, request_id: int, comment: str) -> None:
        super().__init__(message, request_id=request_id)
        self.request_id = request_id
        self.comment = comment


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


loaded = json_column  # a JSON column as read (core.db.json_column)


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value.is_finite() else None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def snapshot(action: ApprovableAction, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the action's rules read, as JSON (decimals as plain text: ``20.00`` and ``20`` are one)."""
    return {name: _plain(conditions.coerce(kind, values.get(name))) for name, kind in action.fields.items()}


def fingerprint(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


async def active_rules(action_key: str, model: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await ApprovalRule.select().where(
        (ApprovalRule.action == action_key) & (ApprovalRule.model == model)
        & (ApprovalRule.is_active == True)).order_by(ApprovalRule.sequence).order_by(  # noqa: E712
        ApprovalRule.id)]


def matching_rule(action: ApprovableAction, rules: Sequence[dict[str, Any]],
                  values: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first rule whose condition the values satisfy (a rule that no longer parses is skipped, logged)."""
    schema = registry.schema(action)
    for rule in rules:
        try:
            node = conditions.parse(loaded(rule["condition"], {}), schema)
        except ValidationError as exc:
            log.warning("approval rule %s no longer fits %s: %s", rule["id"], action.key, exc.message)
            continue
        if conditions.matches(node, values):
            return rule
    return None


# --- asking --------------------------------------------------------------------------------------------------


async def _language(user_id: int) -> str:
    from core.runtime import current

    row = await User.select(User.language).where(User.id == user_id).first()
    return str(row["language"] if row and row["language"] else current().settings.default_language)


async def _tell(user_id: int, subject: str, text: str, url: str, key: str, **params: Any) -> None:
    """Notify ``user_id`` in their language (``subject``/``text`` are English messages with ``%(name)s``;
    a param ending in ``_label`` is translated too)."""
    lang = await _language(user_id)
    values = {k: i18n.in_language(lang, v) if k.endswith("_label") else v for k, v in params.items()}
    await notifications.notify(Notification(
        user_id=user_id, title=i18n.in_language(lang, subject) % values,
        body=i18n.in_language(lang, text) % values if text else "", url=url, kind="approval",
        source=SOURCE), dedup_key=key)


async def _requester_name(request: Mapping[str, Any]) -> str:
    found = await names([int(request["requested_by"])]) if request.get("requested_by") else {}
    return found.get(int(request["requested_by"] or 0), "?")


async def activate(request: Mapping[str, Any], index: int, action: ApprovableAction) -> list[int]:
    """Open step ``index`` of ``request``: one task per approver, each told. Returns the approvers' ids."""
    steps = loaded(request["steps"], [])
    values = loaded(request["snapshot"], {})
    found = await approvers(steps[index], action, values, request["requested_by"])
    if not found:
        raise Conflict(N_("nobody but you may approve this: ask an administrator to change the approval rule "
                          "%(rule)s") % {"rule": request["rule_name"]})
    for user_id, via in found:
        await ApprovalTask.insert(ApprovalTask(request_id=request["id"], step=index, user_id=user_id, via=via))
    who = await _requester_name(request)
    for user_id, _ in found:
        await _tell(user_id, N_("Approval needed: %(action_label)s %(title)s"),
                    N_("%(requester)s asks for your approval (step %(step)s of %(steps)s)."),
                    f"/approvals/{request['id']}", f"approval:{request['id']}:{index}:{user_id}",
                    action_label=action.label, title=request["title"], requester=who, step=index + 1,
                    steps=len(steps))
    return [u for u, _ in found]


async def pending_names(request_id: int, step: int) -> list[str]:
    rows = await ApprovalTask.select(ApprovalTask.user_id).where(
        (ApprovalTask.request_id == request_id) & (ApprovalTask.step == step) & (ApprovalTask.state == "pending"))
    people = await names([int(r["user_id"]) for r in rows])
    return sorted(people.values())


async def _pending(action: ApprovableAction, request: Mapping[str, Any]) -> ApprovalPending:
    people = await pending_names(int(request["id"]), int(request["step"]))
    listed = ", ".join(people[:5]) + (" …" if len(people) > 5 else "")
    message = i18n.gettext("%(action)s needs an approval: awaiting %(approvers)s (approval request %(id)s)") % {
        "action": i18n.gettext(action.label), "approvers": listed, "id": request["id"]}
    return ApprovalPending(message, request_id=int(request["id"]), approvers=people,
                           performs=action.perform is not None)


async def require(access: Access, action_key: str, model: str, record_id: int,
                  record_values: Mapping[str, Any]) -> None:
    """Return when ``action_key`` on record ``record_id`` of ``model`` may go ahead: no active rule matches
    ``record_values``, or a request for these very values was approved. Otherwise raise
    :class:`ApprovalPending` (a new request is recorded and its first approvers told, or one is already
    waiting) or :class:`ApprovalRejected` (rejected under the rule as it stands).

    Call it before opening the action's transaction: the request it records must outlive the refusal.
    Actions without a signed-in user (jobs, the system) are never held."""
    who = access.principal
    if who is None:
        return
    rules = await active_rules(action_key, model)
    if not rules:
        return
    action = await registry.action(action_key, model)
    if action is None:
        raise AddonError(action_key.split(".", 1)[0], f"approvals.require: no approvable action {action_key!r} "
                                                      f"on {model} (declare it with crm_approvable_actions)")
    values = snapshot(action, record_values)
    rule = matching_rule(action, rules, values)
    if rule is None:
        return
    digest = fingerprint(values)
    earlier = [dict(r) for r in await ApprovalRequest.select().where(
        (ApprovalRequest.action == action_key) & (ApprovalRequest.model == model)
        & (ApprovalRequest.record_id == record_id)).order_by(ApprovalRequest.id, ascending=False).limit(50)]
    for old in earlier:
        if old["fingerprint"] != digest:
            continue
        if old["state"] == "approved":
            return
        if old["state"] == "pending":
            raise await _pending(action, old)
        if old["state"] == "rejected" and old["rule_id"] == rule["id"] and old["rule_version"] == rule["version"]:
            raise ApprovalRejected(i18n.gettext("%(action)s was rejected: %(comment)s") % {
                "action": i18n.gettext(action.label), "comment": old["comment"]}, request_id=int(old["id"]),
                comment=str(old["comment"]))
    if db.in_atomic():
        raise AddonError(action_key.split(".", 1)[0], "approvals.require must run before the action's "
                                                      "transaction (the request it records would roll back)")
    async with db.atomic():
        for old in earlier:
            if old["state"] == "pending":  # the record changed while it waited: that request is moot
                await _supersede(old)
        title = str(record_values.get(action.title) or "") if action.title else ""
        rows = await ApprovalRequest.insert(ApprovalRequest(
            action=action_key, model=model, record_id=record_id, title=(title or f"#{record_id}")[:300],
            url=action.url.replace("{id}", str(record_id))[:500], rule_id=rule["id"], rule_name=rule["name"],
            rule_version=rule["version"], steps=loaded(rule["steps"], []), step=0, state="pending",
            snapshot=values, fingerprint=digest, requested_by=who.user_id)).returning(ApprovalRequest.id)
        request = await ApprovalRequest.select().where(ApprovalRequest.id == rows[0]["id"]).first()
        assert request is not None
        await activate(request, 0, action)
        await audit.record("approval_request", model=model, record_id=record_id, principal=who,
                           detail=f"{action_key}: request {request['id']}, rule {rule['id']} "
                                  f"v{rule['version']} ({rule['name']})"[:2000], changes={"values": values})
    raise await _pending(action, request)


async def _supersede(request: Mapping[str, Any]) -> None:
    await ApprovalRequest.update({ApprovalRequest.state: "superseded", ApprovalRequest.decided_at: now()}).where(
        (ApprovalRequest.id == request["id"]) & (ApprovalRequest.state == "pending"))
    await ApprovalTask.update({ApprovalTask.state: "skipped"}).where(
        (ApprovalTask.request_id == request["id"]) & (ApprovalTask.state == "pending"))
    await audit.record("approval_supersede", model=request["model"], record_id=request["record_id"],
                       detail=f"{request['action']}: request {request['id']} (the values changed)")


# --- deciding ------------------------------------------------------------------------------------------------


async def decide(who: Principal, request_id: int, approve: bool, comment: str = "") -> dict[str, Any]:
    """``who`` approves or rejects the current step of request ``request_id`` (a comment is required to reject).
    The last approval approves the request: the requester is told, and an action that declares ``perform``
    runs as the requester after commit. Returns the request's new state."""
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise ValidationError({"comment": N_("is longer than %(limit)s characters") % {"limit": MAX_COMMENT}})
    if not approve and not comment:
        raise ValidationError({"comment": N_("say why you reject it")})
    async with db.atomic():
        request = await ApprovalRequest.select().where(ApprovalRequest.id == request_id).first()
        if request is None:
            raise NotFound(N_("approval request %(id)s not found") % {"id": request_id})
        step = int(request["step"])
        task = await ApprovalTask.select().where(
            (ApprovalTask.request_id == request_id) & (ApprovalTask.step == step)
            & (ApprovalTask.user_id == who.user_id)).first()
        if request["state"] != "pending":
            raise Conflict(N_("this request is already %(state)s") % {"state": request["state"]})
        if task is None and await ApprovalTask.exists().where(
                (ApprovalTask.request_id == request_id) & (ApprovalTask.user_id == who.user_id)
                & (ApprovalTask.state == "skipped")):
            raise Conflict(N_("another approver decided this step before you"))
        if task is None or task["state"] != "pending":
            await audit.record("denied", model=request["model"], record_id=request["record_id"], principal=who,
                               detail=f"approval request {request_id}: not an approver of step {step + 1}")
            raise PermissionDenied(N_("you are not an approver of this step"))
        steps = loaded(request["steps"], [])
        last = step + 1 >= len(steps)
        state = "rejected" if not approve else ("approved" if last else "pending")
        changes: dict[Any, Any] = {ApprovalRequest.step: step + 1} if state == "pending" else {
            ApprovalRequest.state: state, ApprovalRequest.decided_at: now(), ApprovalRequest.comment: comment}
        claimed = await ApprovalRequest.update(changes).where(
            (ApprovalRequest.id == request_id) & (ApprovalRequest.step == step)
            & (ApprovalRequest.state == "pending")).returning(ApprovalRequest.id)
        if not claimed:
            raise Conflict(N_("someone decided this step just before you"))
        await ApprovalTask.update({ApprovalTask.state: "approved" if approve else "rejected",
                                   ApprovalTask.comment: comment, ApprovalTask.decided_at: now()}).where(
            ApprovalTask.id == task["id"])
        await ApprovalTask.update({ApprovalTask.state: "skipped"}).where(
            (ApprovalTask.request_id == request_id) & (ApprovalTask.step == step)
            & (ApprovalTask.state == "pending"))
        await audit.record("approval_approve" if approve else "approval_reject", model=request["model"],
                           record_id=request["record_id"], principal=who, changes={"state": ["pending", state]},
                           detail=f"{request['action']}: request {request_id}, step {step + 1} of {len(steps)}"
                                  f"{': ' + comment if comment else ''}"[:2000])
        action = await registry.action(request["action"], request["model"])
        if action is None:  # its addon was uninstalled meanwhile: record the decision, nothing more to do
            return {"id": request_id, "state": state, "step": step + 1}
        if state == "pending":
            await activate({**request, "step": step + 1}, step + 1, action)
        else:
            await _outcome(request, action, who, approve, comment)
    return {"id": request_id, "state": state, "step": step + 1}


async def _outcome(request: Mapping[str, Any], action: ApprovableAction, who: Principal, approve: bool,
                   comment: str) -> None:
    from core import jobs

    if not request.get("requested_by"):
        return
    url = request["url"] or f"/approvals/{request['id']}"
    params = {"action_label": action.label, "title": request["title"], "approver": who.name, "comment": comment}
    if not approve:
        await _tell(int(request["requested_by"]), N_("Rejected: %(action_label)s %(title)s"),
                    N_("%(approver)s rejected it: %(comment)s"), url, f"approval:{request['id']}:rejected",
                    **params)
    elif action.perform is not None:
        await jobs.enqueue("core.perform_approved", dedup_key=f"approval:{request['id']}:perform",
                           request_id=int(request["id"]))
    else:
        await _tell(int(request["requested_by"]), N_("Approved: %(action_label)s %(title)s"),
                    N_("%(approver)s approved it: you may go ahead."), url, f"approval:{request['id']}:approved",
                    **params)


async def perform(request_id: int) -> str:
    """Run an approved request's held action as its requester (the job ``core.perform_approved``), once: the
    request is claimed first (``performed_at``), and released only for an unexpected error the job retries. The
    requester learns how it went; a refusal (the record changed and needs a new approval, a check of the action
    itself) is reported, not retried."""
    from core.security import context, principal

    request = await ApprovalRequest.select().where(ApprovalRequest.id == request_id).first()
    action = await registry.action(request["action"], request["model"]) if request is not None else None
    if request is None or action is None or action.perform is None or request["state"] != "approved":
        return "nothing to do"
    claimed = await ApprovalRequest.update({ApprovalRequest.performed_at: now()}).where(
        (ApprovalRequest.id == request_id) & ApprovalRequest.performed_at.is_null()).returning(ApprovalRequest.id)
    if not claimed:
        return "done already"
    requester = int(request["requested_by"])
    who = await principal.load(requester, implied=policy().implied)
    params = {"action_label": action.label, "title": request["title"]}
    ok = False
    if who is None:
        outcome = "the requester is no longer active"
    else:
        context.set_context(context.RequestContext(principal=who))
        i18n.set_language(await _language(requester))  # the line it returns is for the requester
        try:
            outcome, ok = await action.perform(Access(who), int(request["record_id"])), True
        except CrmError as exc:
            outcome = exc.message
        except Exception:
            await ApprovalRequest.update({ApprovalRequest.performed_at: None}).where(ApprovalRequest.id == request_id)
            raise
        finally:
            context.set_context(context.RequestContext())
    await ApprovalRequest.update({ApprovalRequest.outcome: outcome[:2000]}).where(ApprovalRequest.id == request_id)
    title = N_("Approved and done: %(action_label)s %(title)s") if ok else N_(
        "Approved, but not done: %(action_label)s %(title)s")
    await _tell(requester, title, "%(outcome)s", request["url"] or f"/approvals/{request_id}",
                f"approval:{request_id}:performed", outcome=outcome, **params)
    return outcome
