"""The automation action "require approval" (``require_approval``): a rule that fires opens an approval request
for the record's approvable action, with the approvers the rule's author chose; the action is held until they
decide, then runs by itself (approved) or not at all (rejected, the comment on the request and the record's
page).

Params: ``action`` — an approvable action of the rule's model that runs by itself once approved
(``ApprovableAction.perform``: sending a quote, re-driving an ERP order…); ``approvers`` — one to five steps in
order, as in approval rules (``{"approver": "role", "role": "sales_manager"}``, ``{"approver": "team_leader"}``,
``{"approver": "user", "user": "li"}``); ``note`` — optional words for the approvers.

The request is asked in the name of the rule's author (who the action then runs as, and who hears the outcome);
one request per firing of the rule (``ctx.key``), however often the run is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import values as core_values
from core.approvals import registry
from core.errors import PermanentJobError, ValidationError
from core.hooks import AutomationContext, AutomationModel
from core.i18n import N_

MAX_STEPS = 5
MAX_NOTE = 1000


async def check(am: AutomationModel, params: Mapping[str, Any]) -> Mapping[str, Any]:
    from core.approvals.rules import _check_step

    unknown = sorted(set(params) - {"action", "approvers", "note"})
    if unknown:
        raise ValidationError({unknown[0]: N_("is not a parameter of this action (action, approvers, note)")})
    key = params.get("action")
    offered = sorted(k for (k, model), a in (await registry.actions()).items() if model == am.model and a.perform)
    action = await registry.action(key, am.model) if isinstance(key, str) else None
    if action is None or action.perform is None:
        raise ValidationError(
            {
                "action": N_("must be an approvable action of %(model)s that runs by itself once approved: %(actions)s")
                % {"model": am.model, "actions": ", ".join(offered) or "—"}
            }
        )
    steps = params.get("approvers")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ValidationError(
            {"approvers": N_("must be a list of 1 to %(count)s approvers, in order") % {"count": MAX_STEPS}}
        )
    checked = [await _check_step(step, f"approvers[{i}]") for i, step in enumerate(steps)]
    note = params.get("note", "") or ""
    if not isinstance(note, str) or len(note) > MAX_NOTE or core_values.text_problem(note):
        raise ValidationError({"note": N_("must be text of at most %(limit)s characters") % {"limit": MAX_NOTE}})
    return {"action": action.key, "approvers": checked, "note": note.strip()}


async def run(ctx: AutomationContext) -> str:
    """Open the request (once per firing) and tell its first approvers; the run's log line names it."""
    from core.approvals.flow import activate, fingerprint, snapshot
    from core.approvals.models import ApprovalRequest
    from core.automation.models import AutomationRule
    from core.security import audit
    from core.security.models import User

    action = await registry.action(str(ctx.params.get("action")), ctx.model)
    if action is None or action.perform is None:
        raise PermanentJobError(f"{ctx.params.get('action')} is no longer an approvable action of {ctx.model}")
    digest = fingerprint({"automation": ctx.key})
    earlier = (
        await ApprovalRequest.select(ApprovalRequest.id)
        .where((ApprovalRequest.fingerprint == digest) & (ApprovalRequest.record_id == ctx.record_id))
        .first()
    )
    if earlier is not None:
        return f"approval request {earlier['id']} already asked"
    rule = (
        await AutomationRule.select(AutomationRule.created_by, AutomationRule.version)
        .where(AutomationRule.id == ctx.rule_id)
        .first()
    )
    author = rule["created_by"] if rule else None
    if author is None or not await User.exists().where((User.id == author) & (User.is_active == True)):  # noqa: E712
        raise PermanentJobError("the rule's author is no longer active: nobody to act as once it is approved")
    values = snapshot(action, ctx.record)
    note = str(ctx.params.get("note") or "")
    if note:  # shown to the approvers with the values
        values["note"] = note
    title = str(ctx.record.get(action.title) or "") if action.title else ""
    rows = await ApprovalRequest.insert(
        ApprovalRequest(
            action=action.key,
            model=ctx.model,
            record_id=ctx.record_id,
            title=(title or f"#{ctx.record_id}")[:300],
            url=(action.url.replace("{id}", str(ctx.record_id)) or ctx.url)[:500],
            rule_id=None,
            rule_name=f"{ctx.rule_name} (automation #{ctx.rule_id})"[:200],
            rule_version=int(rule["version"] or 1) if rule else 1,
            steps=list(ctx.params.get("approvers") or []),
            step=0,
            state="pending",
            snapshot=values,
            fingerprint=digest,
            requested_by=int(author),
            comment="",
        )
    ).returning(ApprovalRequest.id)
    request = await ApprovalRequest.select().where(ApprovalRequest.id == rows[0]["id"]).first()
    assert request is not None
    asked = await activate(request, 0, action)
    await audit.record(
        "approval_request",
        model=ctx.model,
        record_id=ctx.record_id,
        detail=f"{action.key}: request {request['id']} by automation rule {ctx.rule_id} "
        f"({ctx.rule_name}){': ' + note if note else ''}"[:2000],
        changes={"values": values},
        login=f"automation #{ctx.rule_id}",
    )
    return f"approval request {request['id']} for {action.key}: awaiting user(s) {', '.join(map(str, asked))}"
