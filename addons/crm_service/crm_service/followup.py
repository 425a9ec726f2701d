"""The follow-up call after a high-priority complaint.

With crm_sales installed, the call is a sales activity on the customer, created through the kernel automation
action ``crm_sales.create_activity`` (as crm_marketing's journeys do: crm_service names no crm_sales module),
owned by the ticket's assignee. Without it, or for a ticket with no customer, the call is a ``FollowUp`` row on
the ticket and the scheduled sweep (``crm_service.check_sla``) notifies the assignee when it is due. Either
way the ticket's audit log says what was scheduled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_contacts import api as contacts

from core.automation import registry
from core.hooks import AutomationContext, Notification
from core.i18n import gettext
from core.notifications import notify
from core.security import audit
from crm_service.manifest import TICKET
from crm_service.models import FollowUp

ACTION = "crm_sales.create_activity"
DUE_IN_HOURS = 24


def _plain(text: str) -> str:
    """A customer's subject made inert for the action's template rendering (no ``{{ }}``/``{% %}``)."""
    return text.replace("{", "(").replace("}", ")")


async def schedule_call(ticket: dict[str, Any], *, now: dt.datetime | None = None) -> str:
    """Schedule the follow-up call of ``ticket``; returns what was done (also audited on the ticket)."""
    from crm_service.tickets import reference

    now = now or dt.datetime.now(dt.UTC)
    ref = reference(int(ticket["id"]))
    subject = gettext("Follow-up call: %(ref)s") % {"ref": ref}
    note = f"{_plain(ticket['subject'])}\n/service/tickets/{ticket['id']}"
    action = (await registry.actions()).get(ACTION)
    if action is not None and ticket["person"] and (not action.models or contacts.PERSON_MODEL in action.models):
        params: dict[str, Any] = {"kind": "call", "subject": _plain(subject), "note": note,
                                  "due_in_hours": DUE_IN_HOURS}
        person_model = await registry.model(contacts.PERSON_MODEL)
        if action.check is not None and person_model is not None:
            params = dict(await action.check(person_model, params))
        done = await action.run(AutomationContext(
            rule_id=0, rule_name=f"crm_service: follow-up of {ref}", run_id=int(ticket["id"]),
            key=f"crm_service.followup:{ticket['id']}", model=contacts.PERSON_MODEL,
            record_id=int(ticket["person"]),
            # the activity belongs to whoever handles the ticket, not to the contact's owner
            record={"id": int(ticket["person"]), "owner": ticket["owner"], "team": ticket["team"]},
            params=params, url=f"/service/tickets/{ticket['id']}"))
    else:
        row = FollowUp(ticket=int(ticket["id"]), user=ticket["owner"], due_at=now + dt.timedelta(hours=DUE_IN_HOURS),
                       note=subject[:300])
        await row.save()
        done = f"follow-up {row.id} due {row.due_at.isoformat()}"
    await audit.record("follow_up", model=TICKET, record_id=int(ticket["id"]), detail=done[:2000])
    return done


async def remind_due(now: dt.datetime | None = None) -> int:
    """Notify the assignee of each follow-up call now due (once: ``notified_at``); a follow-up without a user
    goes to the ticket's current assignee."""
    from crm_service.tickets import reference

    now = now or dt.datetime.now(dt.UTC)
    rows = await FollowUp.select(FollowUp.id, FollowUp.ticket, FollowUp.user, FollowUp.note,
                                 FollowUp.ticket.owner.as_alias("owner"), FollowUp.ticket.subject.as_alias("subject")
                                 ).where((FollowUp.due_at <= now) & FollowUp.notified_at.is_null())
    told = 0
    for r in rows:
        user = r["user"] or r["owner"]
        if user:
            await notify(Notification(user_id=int(user), title=gettext("Follow-up call due: %(ref)s") % {
                "ref": reference(int(r["ticket"]))}, body=r["subject"], url=f"/service/tickets/{r['ticket']}",
                kind="info", source="crm_service"), dedup_key=f"crm_service.followup.{r['id']}")
            told += 1
        await FollowUp.update({FollowUp.notified_at: now}).where(FollowUp.id == r["id"])
    return told


async def open_for(ticket_id: int) -> list[dict[str, Any]]:
    """The ticket's follow-up calls, for its page."""
    return list(await FollowUp.select(FollowUp.id, FollowUp.due_at, FollowUp.user.name, FollowUp.notified_at).where(
        FollowUp.ticket == ticket_id).order_by(FollowUp.due_at))

