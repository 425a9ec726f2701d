"""Journeys (nurture automation): a trigger enrolls people, who then go through the journey's steps in order.

A journey is data (``Journey.trigger`` and ``Journey.steps``, JSON):

- triggers: ``{"type": "segment", "segment": 3}`` (entered a segment), ``{"type": "campaign", "campaign": 5,
  "on": "opened" | "clicked" | "not_opened", "days": 3}`` (scanner hits never count; "not opened" N days after
  the mail went), ``{"type": "event", "event": "viewed_product_page", "count": 3}`` (custom events posted
  through the API);
- steps: ``{"kind": "wait", "hours": 24}`` (or ``"days"``), ``{"kind": "condition", "condition": {...}}`` (the
  segment language, i.e. the kernel's ``core.conditions`` over people plus tags and campaign behaviour; a person
  who does not match leaves the journey), and actions ``send_mail`` (``campaign``: its texts go out through the
  campaign sending path, never to an unsubscribed or do-not-contact address), ``add_tag`` / ``remove_tag``
  (``tag``), ``set_stage`` (``stage``: the kernel's ``set_field`` action) and ``notify`` (the kernel's action:
  ``user_id``, ``title_en``, ``title_zh``, ``body_en``, ``body_zh``).

A person enters a journey once, unless it allows re-entry (then again once the last pass is over and the trigger
fired anew: a newer event or open; for a segment, while still in it). The scheduled actor
``crm_marketing.journeys_tick`` enrolls and then advances due enrollments in batches. Each step runs in its own
transaction that first moves the enrollment on with a conditional update (``WHERE position = p``): a retried or
duplicated advance finds the step taken and does nothing, and a step that fails rolls back with its move, so a
step's effect happens once per enrollment. The steps one enrollment takes in a row (up to a wait) share that
transaction: one commit per person, and a failure rolls them all back to be tried again.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from crm_contacts.api import PERSON_MODEL, PERSON_TABLE

from core import db, jobs
from core.db import json_column
from core.errors import NotFound, ValidationError
from core.hooks import AutomationContext
from core.i18n import N_
from crm_marketing.models import (
    Campaign,
    CampaignEvent,
    CampaignRecipient,
    FormSubmission,
    Journey,
    JourneyEnrollment,
    MarketingEvent,
    SegmentMember,
)

log = logging.getLogger(__name__)

MAX_STEPS = 30
BATCH = 200
TRIGGERS = ("segment", "campaign", "event", "idle", "form", "birthday", "dormant")
CAMPAIGN_ON = ("opened", "clicked", "not_opened")
STEP_KINDS = ("wait", "condition", "send_mail", "add_tag", "remove_tag", "set_stage", "notify", "action")
STEP_LABELS = {
    "wait": N_("Wait"),
    "condition": N_("Condition"),
    "send_mail": N_("Send a mail"),
    "add_tag": N_("Add a tag"),
    "remove_tag": N_("Remove a tag"),
    "set_stage": N_("Set the lifecycle stage"),
    "notify": N_("Notify a user"),
    "action": N_("Automation action"),
}
TRIGGER_LABELS = {
    "segment": N_("Entered a segment"),
    "campaign": N_("Campaign mail"),
    "event": N_("Custom event"),
    "idle": N_("Dormant (no change for N days)"),
    "form": N_("Submitted a form"),
    "birthday": N_("Birthday"),
    "dormant": N_("Dormant (no order for N months)"),
}
ON_LABELS = {"opened": N_("opened"), "clicked": N_("clicked"), "not_opened": N_("not opened")}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


loaded = json_column  # a JSON column as read (core.db.json_column)


def _positive(raw: Mapping[str, Any], name: str, path: str, *, default: int | None = None, top: int = 100000) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
        raise ValidationError({f"{path}.{name}": N_("must be a whole number from 1 up to its limit")})
    return value


def _only(raw: Mapping[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ValidationError({f"{path}.{unknown[0]}": N_("is not known here")})


async def check_trigger(raw: Any) -> dict[str, Any]:
    """The trigger checked (422 naming ``trigger.…``); a segment or campaign it names must exist."""
    from crm_marketing.models import Segment

    if not isinstance(raw, dict) or raw.get("type") not in TRIGGERS:
        raise ValidationError(
            {"trigger.type": N_("must be one of: segment, campaign, event, idle, form, birthday, dormant")}
        )
    kind = raw["type"]
    if kind == "birthday":  # date triggers: enrolled by the daily crm_marketing.date_triggers (date_triggers.py)
        _only(raw, "trigger", ("type",))
        return {"type": kind}
    if kind == "dormant":
        _only(raw, "trigger", ("type", "months"))
        return {"type": kind, "months": _positive(raw, "months", "trigger", default=3, top=120)}
    if kind == "idle":
        _only(raw, "trigger", ("type", "days"))
        return {"type": kind, "days": _positive(raw, "days", "trigger", top=3650)}
    if kind == "segment":
        _only(raw, "trigger", ("type", "segment"))
        segment = _positive(raw, "segment", "trigger", top=2**62)
        if not await Segment.exists().where(Segment.id == segment):
            raise ValidationError({"trigger.segment": N_("no such segment")})
        return {"type": kind, "segment": segment}
    if kind == "form":
        # a capture form's submissions (forms.py); honeypot hits never count
        from crm_marketing.models import CaptureForm

        _only(raw, "trigger", ("type", "form"))
        form = _positive(raw, "form", "trigger", top=2**62)
        if not await CaptureForm.exists().where(CaptureForm.id == form):
            raise ValidationError({"trigger.form": N_("no such form")})
        return {"type": kind, "form": form}
    if kind == "campaign":
        _only(raw, "trigger", ("type", "campaign", "on", "days"))
        campaign = _positive(raw, "campaign", "trigger", top=2**62)
        if not await Campaign.exists().where(Campaign.id == campaign):
            raise ValidationError({"trigger.campaign": N_("no such campaign")})
        on = raw.get("on")
        if on not in CAMPAIGN_ON:
            raise ValidationError({"trigger.on": N_("must be one of: opened, clicked, not_opened")})
        out: dict[str, Any] = {"type": kind, "campaign": campaign, "on": on}
        if on == "not_opened":
            out["days"] = _positive(raw, "days", "trigger", default=3, top=365)
        return out
    _only(raw, "trigger", ("type", "event", "count"))
    name = raw.get("event")
    if not isinstance(name, str) or not event_name_ok(name):
        raise ValidationError({"trigger.event": N_("must be a name of letters, digits, '_', '.' or '-'")})
    return {"type": kind, "event": name, "count": _positive(raw, "count", "trigger", default=1, top=1000)}


def event_name_ok(name: str) -> bool:
    return 0 < len(name) <= 100 and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name)


async def check_steps(raw: Any, access: Any = None) -> list[dict[str, Any]]:
    """The steps checked (422 naming ``steps[i].…``); actions' params go through the kernel actions' checks. With
    ``access``, a condition on a field its user sees masked is refused (403), as in segments."""
    from core.automation import registry
    from crm_marketing import segments

    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
        raise ValidationError({"steps": N_("must be a list of 1 to 30 steps")})
    out: list[dict[str, Any]] = []
    person_model = await registry.model(PERSON_MODEL)
    kernel = await registry.actions()
    for i, step in enumerate(raw):
        path = f"steps[{i}]"
        if not isinstance(step, dict) or step.get("kind") not in STEP_KINDS:
            raise ValidationError(
                {
                    f"{path}.kind": N_(
                        "must be one of: wait, condition, send_mail, add_tag, remove_tag, set_stage, notify, action"
                    )
                }
            )
        kind = step["kind"]
        if kind == "wait":
            _only(step, path, ("kind", "hours", "days"))
            if ("hours" in step) == ("days" in step):
                raise ValidationError({f"{path}.hours": N_("give hours or days")})
            name = "hours" if "hours" in step else "days"
            out.append({"kind": kind, name: _positive(step, name, path, top=24 * 365 if name == "hours" else 365)})
        elif kind == "condition":
            _only(step, path, ("kind", "condition"))
            sch = await segments.schema()
            from core import conditions

            node = conditions.parse(step.get("condition") or {}, sch, path=f"{path}.condition")
            segments.where(node, sch, access)
            out.append({"kind": kind, "condition": conditions.as_json(node)})
        elif kind == "send_mail":
            _only(step, path, ("kind", "campaign"))
            campaign = _positive(step, "campaign", path, top=2**62)
            if not await Campaign.exists().where(Campaign.id == campaign):
                raise ValidationError({f"{path}.campaign": N_("no such campaign")})
            out.append({"kind": kind, "campaign": campaign})
        elif kind in ("add_tag", "remove_tag"):
            _only(step, path, ("kind", "tag"))
            tag = step.get("tag")
            if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > 60:
                raise ValidationError({f"{path}.tag": N_("must be a tag name of at most 60 characters")})
            out.append({"kind": kind, "tag": tag.strip()})
        else:
            if person_model is None:
                raise NotFound(f"{PERSON_MODEL} is not registered")
            if kind == "action":
                # any action the kernel's automation offers for people (crm_sales.create_activity when installed)
                _only(step, path, ("kind", "action", "params"))
                wanted = step.get("action")
                found = kernel.get(wanted) if isinstance(wanted, str) else None
                if found is None or (found.models and PERSON_MODEL not in found.models):
                    raise ValidationError({f"{path}.action": N_("is not an automation action for people")})
                raw_params = step.get("params") or {}
                if not isinstance(raw_params, dict):
                    raise ValidationError({f"{path}.params": N_("must be an object")})
                params, action = raw_params, found
            elif kind == "set_stage":
                _only(step, path, ("kind", "stage"))
                params = {"field": "stage", "value": step.get("stage")}
                action = kernel["set_field"]
            else:
                _only(step, path, ("kind", "user_id", "title_en", "title_zh", "body_en", "body_zh"))
                params = {"to": "user", **{k: v for k, v in step.items() if k != "kind"}}
                action = kernel["notify"]
            try:
                checked = dict(await action.check(person_model, params)) if action.check else dict(params)
            except ValidationError as exc:
                inner = "params." if kind == "action" else ""
                raise ValidationError({f"{path}.{inner}{k}": v for k, v in exc.fields.items()}) from None
            if kind == "action":
                out.append({"kind": kind, "action": action.kind, "params": checked})
            elif kind == "set_stage":
                out.append({"kind": kind, "stage": checked["value"]})
            else:
                out.append({"kind": kind, **{k: v for k, v in checked.items() if k != "to"}})
    return out


# ---------------------------------------------------------------- enrollment


async def _live(person_ids: set[int]) -> set[int]:
    from crm_marketing import segments

    if not person_ids:
        return set()
    sch = await segments.schema()
    table: Any = sch.table
    found = await table.select(table.id).where(table.id.is_in(sorted(person_ids)) & segments._live(sch))
    return {int(r["id"]) for r in found}


async def _evidence(trigger: Mapping[str, Any], only: set[int] | None = None) -> dict[int, list[dt.datetime]]:
    """Per person, when the trigger fired for them (a segment's members: one undated entry)."""
    out: dict[int, list[dt.datetime]] = {}
    kind = trigger.get("type")
    if kind == "segment":
        among = SegmentMember.segment == trigger["segment"]
        if only is not None:
            among = among & SegmentMember.person.is_in(sorted(only) or [0])
        for r in await SegmentMember.select(SegmentMember.person).where(among):
            out[int(r["person"])] = []
    elif kind == "event":
        for r in await MarketingEvent.select(MarketingEvent.person, MarketingEvent.at).where(
            MarketingEvent.name == trigger["event"]
        ):
            out.setdefault(int(r["person"]), []).append(r["at"])
    elif kind == "idle":
        # dormant: the contact record unchanged for N days; the change time is the evidence, so with re-entry a
        # contact that woke up and fell dormant again enters again
        from crm_marketing import segments

        sch = await segments.schema()
        table: Any = sch.table
        cutoff = _now() - dt.timedelta(days=int(trigger["days"]))
        for r in await table.select(table.id, table.updated_at).where(
            (table.updated_at <= cutoff) & segments._live(sch)
        ):
            out[int(r["id"])] = [r["updated_at"]]
    elif kind == "form":
        for r in await FormSubmission.select(FormSubmission.person, FormSubmission.at).where(
            (FormSubmission.form == trigger["form"]) & FormSubmission.is_spam.eq(False)
            & FormSubmission.person.is_not_null()
        ):
            out.setdefault(int(r["person"]), []).append(r["at"])
    elif kind == "campaign" and trigger["on"] in ("opened", "clicked"):
        for r in await CampaignEvent.select(CampaignEvent.recipient.person.as_alias("person"), CampaignEvent.at).where(
            (CampaignEvent.campaign == trigger["campaign"])
            & (CampaignEvent.kind == ("open" if trigger["on"] == "opened" else "click"))
            & CampaignEvent.is_scanner.eq(False)
        ):
            if r["person"] is not None:
                out.setdefault(int(r["person"]), []).append(r["at"])
    elif kind == "campaign":
        cutoff = _now() - dt.timedelta(days=int(trigger.get("days", 3)))
        opened = {
            int(r["recipient"])
            for r in await CampaignEvent.select(CampaignEvent.recipient).where(
                (CampaignEvent.campaign == trigger["campaign"])
                & (CampaignEvent.kind == "open")
                & CampaignEvent.is_scanner.eq(False)
            )
        }
        for r in await CampaignRecipient.select(
            CampaignRecipient.id, CampaignRecipient.person, CampaignRecipient.sent_at
        ).where(
            (CampaignRecipient.campaign == trigger["campaign"])
            & (CampaignRecipient.state == "sent")
            & (CampaignRecipient.sent_at <= cutoff)
        ):
            if r["person"] is not None and int(r["id"]) not in opened:
                out[int(r["person"])] = [r["sent_at"]]
    return out


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def enroll(journey_id: int, only: set[int] | None = None) -> int:
    """Enroll the people the journey's trigger selects now (of ``only``, when given: people who just joined
    its segment); how many entered."""
    async with db.atomic():
        # a no-op write takes the journey's row lock: two ticks enrolling at once wait for each other and the
        # second sees the first's enrollments (no one enters twice)
        locked = (
            await Journey.update({Journey.is_active: Journey.is_active})
            .where((Journey.id == journey_id) & Journey.is_active.eq(True))
            .returning(Journey.id, Journey.trigger, Journey.allow_reentry)
        )
        if not locked:
            return 0
        row = locked[0]
        trigger = loaded(row["trigger"], {})
        evidence = await _evidence(trigger, only)
        if only is not None:
            evidence = {p: t for p, t in evidence.items() if p in only}
        if not evidence:
            return 0
        last: dict[int, tuple[dt.datetime, str]] = {}
        for e in await JourneyEnrollment.select(
            JourneyEnrollment.person, JourneyEnrollment.entered_at, JourneyEnrollment.state
        ).where(
            (JourneyEnrollment.journey == journey_id)
            & (JourneyEnrollment.person.is_in(sorted(evidence)) if only is not None else JourneyEnrollment.id > 0)
        ):
            person, at = int(e["person"]), _aware(e["entered_at"])
            if person not in last or at >= last[person][0]:
                last[person] = (at, e["state"])
        wanted = int(trigger.get("count", 1)) if trigger.get("type") == "event" else 1
        chosen: set[int] = set()
        for person, times in evidence.items():
            if person in last:
                at, state = last[person]
                if not row["allow_reentry"] or state == "active":
                    continue
                times = [t for t in times if _aware(t) > at] if trigger.get("type") != "segment" else times
                if trigger.get("type") != "segment" and len(times) < wanted:
                    continue
            elif trigger.get("type") == "event" and len(times) < wanted:
                continue
            chosen.add(person)
        chosen = await _live(chosen)
        now = _now()
        if chosen:
            await JourneyEnrollment.insert(
                *[JourneyEnrollment(journey=journey_id, person=p, entered_at=now) for p in sorted(chosen)]
            )
    return len(chosen)


# ---------------------------------------------------------------- advancing


async def _people(person_ids: Sequence[int], sch: Any) -> dict[int, dict[str, Any]]:
    """The live people among ``person_ids`` (one query for a whole batch)."""
    from crm_marketing import segments

    table: Any = sch.table
    rows = await table.select().where(table.id.is_in(sorted(set(person_ids)) or [0]) & segments._live(sch))
    return {int(r["id"]): dict(r) for r in rows}


async def _matches(condition: Any, person_id: int, sch: Any) -> bool:
    from core import conditions
    from crm_marketing import segments

    node = conditions.parse(condition or {}, sch)
    clause = segments.where(node, sch)
    table: Any = sch.table
    full = (table.id == person_id) & segments._live(sch)
    return bool(await table.exists().where(full if clause is None else full & clause))


async def _tag(person_id: int, tag: str, add: bool) -> None:
    from crm_contacts.api import add_tag, remove_tag

    await (add_tag if add else remove_tag)(person_id, tag)


_MAIL_SQL = (
    'INSERT INTO "crm_marketing_campaign_recipient" ("campaign", "person", "email", "language", "state", '
    '"attempts", "error") '
    'SELECT {}, p."id", p."email", p."language", \'queued\', 0, \'\' FROM "' + PERSON_TABLE + '" p '
    'WHERE p."id" = {} AND p."email" <> \'\' '
    'AND NOT EXISTS (SELECT 1 FROM "crm_marketing_suppression" s '
    '                WHERE s."email" = lower(p."email") OR s."person" = p."id") '
    'AND NOT EXISTS (SELECT 1 FROM "crm_marketing_campaign_recipient" r '
    '                WHERE r."campaign" = {} AND r."person" = p."id")'
)


async def _send_mail(campaign_id: int, person_id: int) -> str:
    """Queue the campaign's mail to the person through the campaign sending path (suppressions checked here and
    again by the batch). A person gets a campaign's mail once, whatever journey pass asks for it."""
    await CampaignRecipient.raw(_MAIL_SQL, campaign_id, person_id, campaign_id)
    row = (
        await CampaignRecipient.select(CampaignRecipient.id, CampaignRecipient.state)
        .where((CampaignRecipient.campaign == campaign_id) & (CampaignRecipient.person == person_id))
        .first()
    )
    if row is None:
        return "no mail: no address, or unsubscribed / do not contact"
    if row["state"] != "queued":
        return f"mail already {row['state']}"
    rid = int(row["id"])
    await jobs.enqueue(
        "crm_marketing.send_batch", dedup_key=f"journey-mail-{rid}", campaign_id=campaign_id, first_id=rid, last_id=rid
    )
    return f"mail queued (recipient {rid})"


async def _kernel_action(
    kind: str,
    params: dict[str, Any],
    journey: Mapping[str, Any],
    enrollment_id: int,
    position: int,
    person: dict[str, Any],
) -> str:
    from core.automation import events, registry

    action = (await registry.actions())[kind]
    ctx = AutomationContext(
        rule_id=int(journey["id"]),
        rule_name=f"journey: {journey['name']}"[:200],
        run_id=enrollment_id,
        key=f"crm_marketing.journey:{enrollment_id}:{position}",
        model=PERSON_MODEL,
        record_id=int(person["id"]),
        record={k: events.jsonable(v) for k, v in person.items()},
        params=params,
        url=f"/contacts/people/{person['id']}",
    )
    return await action.run(ctx)


async def _effect(
    step: Mapping[str, Any], journey: Mapping[str, Any], enr: Mapping[str, Any], person: dict[str, Any]
) -> str:
    kind = step["kind"]
    pid = int(enr["person"])
    if kind == "send_mail":
        return await _send_mail(int(step["campaign"]), pid)
    if kind in ("add_tag", "remove_tag"):
        await _tag(pid, str(step["tag"]), kind == "add_tag")
        return f"{kind} {step['tag']}"
    if kind in ("set_stage", "action"):
        from crm_marketing import freshness

        # the kernel's actions write the person without crm_contacts' "updated" event: refresh their segments
        await freshness.note(pid)
    if kind == "set_stage":
        return await _kernel_action(
            "set_field",
            {"field": "stage", "value": step["stage"]},
            journey,
            int(enr["id"]),
            int(enr["position"]),
            person,
        )
    if kind == "action":
        return await _kernel_action(
            str(step["action"]), dict(step["params"]), journey, int(enr["id"]), int(enr["position"]), person
        )
    params = {"to": "user", **{k: v for k, v in step.items() if k != "kind"}}
    return await _kernel_action("notify", params, journey, int(enr["id"]), int(enr["position"]), person)


async def _step_once(
    enr: dict[str, Any],
    journey: Mapping[str, Any],
    steps: Sequence[Mapping[str, Any]],
    person: dict[str, Any] | None,
    sch: Any,
) -> bool:
    """Run the enrollment's next step (``enr`` as read at the start of the batch, kept up to date here); False
    when it has to wait (or is over). The conditional move is the claim: a concurrent or retried advance of the
    same step finds no row and does nothing."""
    if enr["state"] != "active":
        return False
    now = _now()
    due = enr["due_at"]
    if due is not None and _aware(due) > now:
        return False
    enrollment_id, pos = int(enr["id"]), int(enr["position"])
    same = (
        (JourneyEnrollment.id == enrollment_id)
        & (JourneyEnrollment.position == pos)
        & (JourneyEnrollment.state == "active")
    )
    same = same & (JourneyEnrollment.due_at.is_null() if due is None else JourneyEnrollment.due_at == due)
    move: dict[Any, Any]
    if pos >= len(steps):
        move = {JourneyEnrollment.state: "done", JourneyEnrollment.left_at: now}
        go_on = False
    elif person is None:  # archived, merged away or erased since
        move = {
            JourneyEnrollment.state: "exited",
            JourneyEnrollment.left_at: now,
            JourneyEnrollment.note: "contact gone",
        }
        go_on = False
    else:
        step = steps[pos]
        move = {JourneyEnrollment.position: pos + 1, JourneyEnrollment.due_at: None}
        go_on = True
        if step["kind"] == "wait" and due is None:
            go_on = False
            span = dt.timedelta(hours=int(step["hours"])) if "hours" in step else dt.timedelta(days=int(step["days"]))
            move = {JourneyEnrollment.due_at: now + span}
        elif step["kind"] == "condition" and not await _matches(step.get("condition"), int(enr["person"]), sch):
            go_on = False
            move = {
                JourneyEnrollment.state: "exited",
                JourneyEnrollment.left_at: now,
                JourneyEnrollment.note: f"condition at step {pos + 1} not met",
            }
    if not await JourneyEnrollment.update(move).where(same).returning(JourneyEnrollment.id):
        enr["state"] = "taken"  # someone else advanced it: leave it to them
        return False
    for column, value in move.items():
        enr[column._meta.name] = value
    if go_on and steps[pos]["kind"] not in ("wait", "condition"):
        note = await _effect(steps[pos], journey, {**enr, "position": pos}, person or {})
        await JourneyEnrollment.update({JourneyEnrollment.note: note[:300]}).where(
            JourneyEnrollment.id == enrollment_id
        )
    return go_on


async def _walk(
    enr: dict[str, Any], journey: Mapping[str, Any], person: dict[str, Any] | None, sch: Any
) -> None:
    """The steps an enrollment takes now, up to its next wait."""
    steps = loaded(journey["steps"], [])
    for _ in range(len(steps) + 1):
        if not await _step_once(enr, journey, steps, person, sch):
            break


#: enrollments advanced in one transaction; a failing one rolls its group back and the group goes again one
#: enrollment per transaction, so only the failing one waits for the next tick
GROUP = 50


async def advance(limit: int = BATCH) -> int:
    """Advance up to ``limit`` due enrollments of active journeys as far as they go; how many were looked at.

    The due enrollments and their people are read once for the batch, and :data:`GROUP` enrollments share a
    transaction (one commit for many people); each step still moves its enrollment with a conditional update."""
    from crm_marketing import segments

    journeys = {
        int(j["id"]): j
        for j in await Journey.select(Journey.id, Journey.name, Journey.steps, Journey.started_by).where(
            Journey.is_active.eq(True)
        )
    }
    if not journeys:
        return 0
    now = _now()
    due = await (
        JourneyEnrollment.select()
        .where(
            (JourneyEnrollment.state == "active")
            & JourneyEnrollment.journey.is_in(sorted(journeys))
            & (JourneyEnrollment.due_at.is_null() | (JourneyEnrollment.due_at <= now))
        )
        .order_by(JourneyEnrollment.id)
        .limit(limit)
    )
    if not due:
        return 0
    sch = await segments.schema()
    people = await _people([int(e["person"]) for e in due], sch)
    for start in range(0, len(due), GROUP):
        group = [dict(e) for e in due[start : start + GROUP]]
        try:
            async with db.atomic():
                for enr in group:
                    await _walk(enr, journeys[int(enr["journey"])], people.get(int(enr["person"])), sch)
        except Exception:  # noqa: BLE001 — the group rolled back: again, one enrollment per transaction
            await _one_by_one([int(e["id"]) for e in group], journeys, sch)
    return len(due)


async def _one_by_one(ids: list[int], journeys: Mapping[int, Mapping[str, Any]], sch: Any) -> None:
    for enrollment_id in ids:
        journey: Mapping[str, Any] = {}
        try:
            async with db.atomic():
                row = await JourneyEnrollment.select().where(JourneyEnrollment.id == enrollment_id).first()
                if row is None:
                    continue
                journey = journeys[int(row["journey"])]
                person = (await _people([int(row["person"])], sch)).get(int(row["person"]))
                await _walk(dict(row), journey, person, sch)
        except Exception as exc:  # noqa: BLE001 — one person's failing step must not hold the others back
            # the steps rolled back with their moves: the next tick tries them again
            log.warning("journey %s, enrollment %s: step failed: %s", journey.get("id"), enrollment_id, exc)
            if journey:
                await _failed(journey, enrollment_id, exc)


async def _failed(journey: Mapping[str, Any], enrollment_id: int, exc: Exception) -> None:
    """Note the error on the enrollment and tell who started the journey (once a day per journey)."""
    from core.hooks import Notification
    from core.i18n import gettext
    from core.notifications import notify

    problem = f"{type(exc).__name__}: {exc}"[:250]
    await JourneyEnrollment.update({JourneyEnrollment.note: f"failed, tried again: {problem}"[:300]}).where(
        JourneyEnrollment.id == enrollment_id
    )
    if journey.get("started_by"):
        await notify(
            Notification(
                user_id=int(journey["started_by"]),
                title=gettext("Journey %(name)s: a step failed and is tried again") % {"name": journey["name"]},
                body=problem,
                url=f"/marketing/journeys/{journey['id']}",
                kind="error",
                source="crm_marketing",
            ),
            dedup_key=f"crm_marketing.journey:{journey['id']}:failed:{_now().date().isoformat()}",
        )


async def tick() -> dict[str, int]:
    """The scheduled work: enroll for every active journey, then advance due enrollments batch by batch."""
    entered = 0
    for j in await Journey.select(Journey.id, Journey.trigger).where(Journey.is_active.eq(True)).order_by(Journey.id):
        if loaded(j["trigger"], {}).get("type") not in ("birthday", "dormant"):  # those: once a day
            entered += await enroll(int(j["id"]))
    moved = 0
    for _ in range(50):  # at most 50 batches a tick; the rest waits for the next minute
        n = await advance()
        moved += n
        if n < BATCH:
            break
    return {"entered": entered, "advanced": moved}


# ---------------------------------------------------------------- figures


async def funnel(journey_id: int, steps: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per step: how many reached it, are at it now and left there (a condition not met); done and total."""
    rows = await JourneyEnrollment.select(JourneyEnrollment.position, JourneyEnrollment.state).where(
        JourneyEnrollment.journey == journey_id
    )
    total = len(rows)
    out: list[dict[str, int]] = []
    for i in range(len(steps)):
        out.append(
            {
                "reached": sum(1 for r in rows if int(r["position"]) > i or int(r["position"]) == i),
                "here": sum(1 for r in rows if int(r["position"]) == i and r["state"] == "active"),
                "left": sum(1 for r in rows if int(r["position"]) == i and r["state"] == "exited"),
            }
        )
    return {"steps": out, "total": total, "done": sum(1 for r in rows if r["state"] == "done")}
