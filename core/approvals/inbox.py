"""Reading requests: the approver's inbox, the requester's own requests, one request with its steps and
decisions, and what a record page shows about the approvals of one record.

A request is shown to its requester, to everyone who may decide (or decided) one of its steps, to the
administrators, and to whoever may read the record it is about.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from core import i18n
from core.approvals import registry
from core.approvals.approvers import names, step_text
from core.approvals.flow import loaded
from core.approvals.models import ApprovalRequest, ApprovalTask
from core.errors import NotFound, PermissionDenied, ValidationError
from core.security.access import Access
from core.security.principal import Principal

BOXES = ("inbox", "mine", "decided", "all")
STATES = ("pending", "approved", "rejected", "superseded")


def _aware(at: Any) -> Any:
    if isinstance(at, dt.datetime) and at.tzinfo is None:
        return at.replace(tzinfo=dt.UTC)
    return at


async def _tasks(request_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    if not request_ids:
        return out
    for row in await ApprovalTask.select().where(ApprovalTask.request_id.is_in(sorted(set(request_ids)))).order_by(
            ApprovalTask.id):
        out.setdefault(int(row["request_id"]), []).append(dict(row))
    return out


async def present(rows: Sequence[Mapping[str, Any]], who: Principal | None) -> list[dict[str, Any]]:
    """Requests as pages and the API show them: steps in words with who decided what, values with labels."""
    tasks = await _tasks([int(r["id"]) for r in rows])
    people_ids = [int(r["requested_by"]) for r in rows if r["requested_by"]]
    people_ids += [int(t["user_id"]) for ts in tasks.values() for t in ts]
    people_ids += [int(s.get("user") or 0) for r in rows for s in loaded(r["steps"], []) if s.get("approver") == "user"]
    people = await names(people_ids)
    out = []
    for row in rows:
        action = await registry.action(row["action"], row["model"])
        mine = tasks.get(int(row["id"]), [])
        steps = []
        for index, step in enumerate(loaded(row["steps"], [])):
            decided = next((t for t in mine if t["step"] == index and t["state"] in ("approved", "rejected")), None)
            waiting = [people.get(int(t["user_id"]), "?") for t in mine if t["step"] == index
                       and t["state"] == "pending"]
            state = decided["state"] if decided else (
                "current" if row["state"] == "pending" and index == row["step"] else "waiting")
            steps.append({"index": index + 1, "text": step_text(step, people), "state": state,
                          "decided_by": people.get(int(decided["user_id"]), "?") if decided else "",
                          "comment": decided["comment"] if decided else "",
                          "decided_at": _aware(decided["decided_at"]) if decided else None,
                          "waiting_on": sorted(waiting)})
        snapshot = loaded(row["snapshot"], {})
        labels = dict(action.labels) if action else {}
        may_decide = who is not None and row["state"] == "pending" and any(
            t["user_id"] == who.user_id and t["step"] == row["step"] and t["state"] == "pending" for t in mine)
        out.append({
            "id": int(row["id"]), "action": row["action"], "model": row["model"], "record_id": int(row["record_id"]),
            "action_label": i18n.gettext(action.label) if action else row["action"],
            "title": row["title"], "url": row["url"], "state": row["state"],
            "step": min(int(row["step"]) + 1, len(steps)), "steps": steps,
            "rule": {"id": row["rule_id"], "name": row["rule_name"], "version": row["rule_version"]},
            "values": [{"field": k, "label": i18n.gettext(labels.get(k, k.replace("_", " ").capitalize())),
                        "value": v} for k, v in snapshot.items()],
            "requested_by": {"id": row["requested_by"], "name": people.get(int(row["requested_by"] or 0), "")},
            "requested_at": _aware(row["requested_at"]), "decided_at": _aware(row["decided_at"]),
            "comment": row["comment"], "waiting_on": next((s["waiting_on"] for s in steps
                                                           if s["state"] == "current"), []),
            "may_decide": may_decide, "performs": bool(action and action.perform),
            "performed_at": _aware(row["performed_at"]), "outcome": row["outcome"]})
    return out


async def listing(who: Principal, box: str = "inbox", *, limit: int = 50, before: int | None = None,
                  state: str | None = None) -> list[dict[str, Any]]:
    """``inbox``: requests waiting for ``who``'s decision; ``mine``: what ``who`` asked for; ``decided``: what
    ``who`` decided; ``all``: every request (administrators). Newest first, ``before`` a request id."""
    if box not in BOXES:
        raise ValidationError({"box": i18n.N_("must be one of %(boxes)s") % {"boxes": ", ".join(BOXES)}})
    if state is not None and state not in STATES:
        raise ValidationError({"state": i18n.N_("must be one of %(states)s") % {"states": ", ".join(STATES)}})
    query = ApprovalRequest.select()
    if box in ("inbox", "decided"):
        wanted = ["pending"] if box == "inbox" else ["approved", "rejected"]
        ids = {int(r["request_id"]) for r in await ApprovalTask.select(ApprovalTask.request_id).where(
            (ApprovalTask.user_id == who.user_id) & ApprovalTask.state.is_in(wanted))}
        query = query.where(ApprovalRequest.id.is_in(sorted(ids) or [-1]))
        if box == "inbox":
            query = query.where(ApprovalRequest.state == "pending")
    elif box == "mine":
        query = query.where(ApprovalRequest.requested_by == who.user_id)
    elif not who.is_admin:
        raise PermissionDenied(i18n.N_("administrators only"))
    if state is not None:
        query = query.where(ApprovalRequest.state == state)
    if before is not None:
        query = query.where(ApprovalRequest.id < before)
    rows = await query.order_by(ApprovalRequest.id, ascending=False).limit(limit)
    return await present(rows, who)


async def inbox_count(user_id: int) -> int:
    """How many requests wait for ``user_id``'s decision (the menu shows it)."""
    return int(await ApprovalTask.count().where((ApprovalTask.user_id == user_id)
                                                & (ApprovalTask.state == "pending")))


async def _may_read_record(access: Access, model: str, record_id: int) -> bool:
    from core.runtime import current

    for res in current().state.get("api_resources", []):
        if res.model == model:
            try:
                await access.get(res.table, model, record_id)
                return True
            except (NotFound, PermissionDenied):
                return False
    return False


async def read(who: Principal, request_id: int) -> dict[str, Any]:
    """One request as :func:`present` shows it; 404 for someone it does not concern."""
    row = await ApprovalRequest.select().where(ApprovalRequest.id == request_id).first()
    if row is not None:
        concerned = who.is_admin or row["requested_by"] == who.user_id or await ApprovalTask.exists().where(
            (ApprovalTask.request_id == request_id) & (ApprovalTask.user_id == who.user_id))
        if concerned or await _may_read_record(Access(who), row["model"], int(row["record_id"])):
            return (await present([row], who))[0]
    raise NotFound(i18n.N_("approval request %(id)s not found") % {"id": request_id})


async def for_record(access: Access, model: str, record_id: int) -> list[dict[str, Any]]:
    """The latest request of each action on one record (a record page's panel; the caller checked the read)."""
    rows = await ApprovalRequest.select().where(
        (ApprovalRequest.model == model) & (ApprovalRequest.record_id == record_id)
        & (ApprovalRequest.state != "superseded")).order_by(ApprovalRequest.id, ascending=False).limit(20)
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        latest.setdefault(str(row["action"]), row)
    return await present(list(latest.values()), access.principal)
