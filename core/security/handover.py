"""When an employee leaves: what they own passes to another user, or is spread over a team.

Every addon says which of its records users own (``crm_owned_records``). :func:`owned` counts them for one user and
:func:`preview` shows who would get what (the dry run the admin sees before confirming); :func:`start` deactivates
the user and, in the same transaction, asks for one background job (``core.transfer_records``) running
:func:`transfer`: batches of rows re-assigned and audited together (``transfer``, one entry per batch and
receiver), then a report to each receiver and to the admin who asked.

Idempotent by construction: a batch only takes rows the leaver still owns (``owner = leaver`` in the UPDATE), so
a retried or repeated job moves nothing twice, and the report is read back from this transfer's audit entries
(its ``key``), so every run reports the same. "Balanced" gives each row to whoever owns the fewest rows of these
kinds at that moment, which a resumed run simply continues.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from piccolo.columns import Integer
from piccolo.query.functions.aggregate import Count

from core import db, hooks, i18n, jobs, outbox
from core.errors import NotFound, PermanentJobError, ValidationError
from core.hooks import Notification, OwnedRecords
from core.i18n import N_, gettext
from core.models import Outbox
from core.security import audit, users
from core.security.models import AuditLog, Team, TeamMember, User
from core.security.principal import Principal

if TYPE_CHECKING:
    from piccolo.columns import Column
    from piccolo.custom_types import Combinable

ACTOR = "core.transfer_records"
MODES = ("user", "team", "keep")
STRATEGIES = ("balanced", "round_robin")
BATCH = 200


@dataclass(frozen=True)
class Plan:
    """Where ``user_id``'s records go: to ``to_user`` (mode ``user``), over the active members of ``team`` (mode
    ``team``, ``strategy`` balanced or round_robin), or nowhere (mode ``keep``)."""

    user_id: int
    mode: str
    to_user: int | None = None
    team: int | None = None
    strategy: str = "balanced"

    def payload(self) -> dict[str, Any]:
        return asdict(self)


async def kinds() -> list[OwnedRecords]:
    """What the installed addons hand over, in their order."""
    found: list[OwnedRecords] = await hooks.call("crm_owned_records")
    return sorted(found, key=lambda k: (k.order, k.model))


def _owner(kind: OwnedRecords) -> Column:
    columns = {c._meta.name: c for c in kind.table._meta.columns}
    return columns[kind.column]


def _of(kind: OwnedRecords, user_ids: Sequence[int]) -> Combinable:
    where: Combinable = _owner(kind).is_in(list(user_ids))
    return where & kind.open_only if kind.open_only is not None else where


async def owned(user_id: int) -> list[dict[str, Any]]:
    """How many rows of each kind ``user_id`` owns that would pass on: ``[{model, label, count}]``."""
    return [{"model": kind.model, "label": kind.label,
             "count": int(await kind.table.count().where(_of(kind, [user_id])))} for kind in await kinds()]


async def receivers(plan: Plan) -> list[int]:
    """The users who receive (active ones only, never the leaver), or ValidationError naming the bad field."""
    if plan.mode not in MODES:
        raise ValidationError({"mode": N_("choose to transfer to a user, spread over a team, or keep")})
    if plan.strategy not in STRATEGIES:
        raise ValidationError({"strategy": N_("choose balanced or round-robin")})
    if plan.mode == "keep":
        return []
    active = User.is_active == True  # noqa: E712
    if plan.mode == "user":
        if plan.to_user is None:
            raise ValidationError({"to_user": N_("choose who receives the records")})
        if plan.to_user == plan.user_id:
            raise ValidationError({"to_user": N_("choose someone other than the user who leaves")})
        if not await User.exists().where((User.id == plan.to_user) & active):
            raise ValidationError({"to_user": N_("is not an active user")})
        return [plan.to_user]
    if plan.team is None or not await Team.exists().where(Team.id == plan.team):
        raise ValidationError({"team": N_("choose a team")})
    members = [r["user"] for r in await TeamMember.select(TeamMember.user).where(TeamMember.team == plan.team)]
    people = sorted(int(r["id"]) for r in await User.select(User.id).where(
        User.id.is_in(members or [-1]) & active & (User.id != plan.user_id)))
    if not people:
        raise ValidationError({"team": N_("has no other active member")})
    return people


async def loads(found: Sequence[OwnedRecords], people: Sequence[int]) -> dict[int, int]:
    """How many rows of these kinds each of ``people`` owns now."""
    load = dict.fromkeys(people, 0)
    for kind in found:
        owner = _owner(kind)
        for row in await kind.table.select(owner.as_alias("who"), Count(alias="n")).where(
                _of(kind, people)).group_by(owner):
            load[int(row["who"])] += int(row["n"])
    return load


class Dealer:
    """Who gets the next row: the least loaded receiver (ties: the lowest id), or the next one in turn."""

    def __init__(self, people: Sequence[int], load: dict[int, int], strategy: str) -> None:
        self.people, self.load, self.strategy, self.turn = list(people), dict(load), strategy, 0

    def deal(self, ids: Sequence[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for record_id in ids:
            if self.strategy == "round_robin":
                who = self.people[self.turn % len(self.people)]
                self.turn += 1
            else:
                who = min(self.people, key=lambda p: (self.load[p], p))
            self.load[who] += 1
            out.setdefault(who, []).append(record_id)
        return out


async def _ids(kind: OwnedRecords, user_id: int, limit: int | None = None) -> list[int]:
    pk = kind.table._meta.primary_key
    query = kind.table.select(pk.as_alias("id")).where(_of(kind, [user_id])).order_by(pk)
    return [int(r["id"]) for r in await (query.limit(limit) if limit else query)]


async def _people(ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    rows = await User.select(User.id, User.login, User.name, User.language).where(User.id.is_in(list(ids) or [-1]))
    return {int(r["id"]): r for r in rows}


async def preview(plan: Plan) -> dict[str, Any]:
    """The dry run: how many rows of each kind the plan moves, and to whom. Nothing is written."""
    people = await receivers(plan)
    found = await kinds()
    load = await loads(found, people)
    dealer = Dealer(people, load, plan.strategy) if people else None
    shown = await _people(people)
    out, gets = [], dict.fromkeys(people, 0)
    for kind in found:
        ids = await _ids(kind, plan.user_id)
        dealt = dealer.deal(ids) if dealer else {}
        for who, chunk in dealt.items():
            gets[who] += len(chunk)
        out.append({"model": kind.model, "label": kind.label, "count": len(ids),
                    "to": {who: len(chunk) for who, chunk in dealt.items()}})
    return {"user_id": plan.user_id, "mode": plan.mode, "strategy": plan.strategy, "kinds": out,
            "total": sum(k["count"] for k in out),
            "receivers": [{"user_id": p, "login": shown[p]["login"], "name": shown[p]["name"], "load": load[p],
                           "gets": gets[p]} for p in people]}


async def start(plan: Plan, *, by: Principal | None = None) -> str:
    """Deactivate ``plan.user_id`` (if still active), record the plan and ask for the transfer, all in one
    transaction; returns the transfer's key (:func:`report`). Nothing to move, or ``keep``: no job."""
    if by is not None and by.user_id == plan.user_id:
        raise ValidationError({"user": N_("You cannot deactivate yourself.")})
    user = await User.select(User.is_active).where(User.id == plan.user_id).first()
    if user is None:
        raise NotFound(f"user {plan.user_id} not found")
    people = await receivers(plan)
    counts = await owned(plan.user_id)
    key = secrets.token_hex(8)
    async with db.atomic():
        if user["is_active"]:
            await users.set_active(plan.user_id, False)
        await audit.record("transfer", model="core.user", record_id=plan.user_id, principal=by,
                           login="" if by else "cli",
                           changes={"key": key, "mode": plan.mode, "to_user": plan.to_user, "team": plan.team,
                                    "strategy": plan.strategy, "receivers": people,
                                    "owned": {c["model"]: c["count"] for c in counts}},
                           detail=f"{plan.mode}: {sum(c['count'] for c in counts)} record(s) owned")
        if plan.mode != "keep" and any(c["count"] for c in counts):
            await jobs.enqueue(ACTOR, dedup_key=f"{ACTOR}:{key}", key=key,
                               admin_id=by.user_id if by else None, **plan.payload())
    return key


async def transfer(plan: Plan, key: str, admin_id: int | None = None) -> dict[str, Any]:
    """The job: move every row the leaver still owns, batch by batch, then tell the receivers and the admin.
    A plan that cannot go on (the receiver left meanwhile, the team is empty) fails at once, for good."""
    from core.security import principal
    from core.security.access import policy

    try:
        people = await receivers(plan)
    except ValidationError as exc:
        raise PermanentJobError(f"the transfer cannot go on: {exc.message}") from exc
    by = await principal.load(admin_id, implied=policy().implied) if admin_id else None
    login = (await _people([admin_id])).get(admin_id, {}).get("login", "") if admin_id else "cli"
    found = await kinds()
    dealer = Dealer(people, await loads(found, people), plan.strategy)
    for kind in found:
        while await _batch(kind, plan.user_id, dealer, key, by, login):
            await outbox.renew_lease(120)  # a heartbeat: a killed worker's job is picked up in minutes
    result = await report(plan.user_id, key)
    await _tell(result, admin_id)
    return result


async def _batch(kind: OwnedRecords, leaver: int, dealer: Dealer, key: str, by: Principal | None,
                 login: str) -> bool:
    """One batch of ``kind`` re-assigned and audited in one transaction; False once nothing is left to move."""
    ids = await _ids(kind, leaver, BATCH)
    if not ids:
        return False
    table, pk, owner = kind.table, kind.table._meta.primary_key, _owner(kind)
    version = {c._meta.name: c for c in table._meta.columns}.get("version")
    moved = 0
    async with db.atomic():
        for who, chunk in dealer.deal(ids).items():
            values: dict[Any, Any] = {owner: who}
            if isinstance(version, Integer):
                values[version] = version + 1  # a stale edit of a moved record gets its 409
            rows = await table.update(values).where(pk.is_in(chunk) & _of(kind, [leaver])).returning(pk)
            done = sorted(int(r[pk._meta.name]) for r in rows)
            if done:
                await audit.record("transfer", model=kind.model, record_id=key, principal=by, login=login,
                                   changes={"owner": [leaver, who], "ids": done},
                                   detail=f"{len(done)} record(s) from user {leaver} to user {who}")
            moved += len(done)
    return moved > 0


def _loaded(changes: Any) -> dict[str, Any]:
    value = json.loads(changes) if isinstance(changes, str) else changes
    return value if isinstance(value, dict) else {}


async def plans(user_id: int) -> list[dict[str, Any]]:
    """The transfers decided for ``user_id``, newest first: ``{key, at, by, mode, …}``."""
    rows = await AuditLog.select(AuditLog.at, AuditLog.user_login, AuditLog.changes).where(
        (AuditLog.action == "transfer") & (AuditLog.model == "core.user") & (AuditLog.record_id == str(user_id))
    ).order_by(AuditLog.id, ascending=False)
    return [{**_loaded(r["changes"]), "at": r["at"], "by": r["user_login"]} for r in rows]


async def report(user_id: int, key: str) -> dict[str, Any]:
    """What transfer ``key`` of ``user_id`` moved (counts per kind and per receiver, from its audit entries), its
    state (``queued``, ``running``, ``done``, ``failed``, ``kept``, ``nothing``) and what the user still owns."""
    plan = next((p for p in await plans(user_id) if p.get("key") == key), None)
    if plan is None:
        raise NotFound(f"no transfer {key[:40]!r} for user {user_id}")
    labels = {k.model: k.label for k in await kinds()}
    per: dict[str, dict[int, int]] = {}
    for row in await AuditLog.select(AuditLog.model, AuditLog.changes).where(
            (AuditLog.action == "transfer") & (AuditLog.record_id == key)).order_by(AuditLog.id):
        changes = _loaded(row["changes"])
        who = int(changes["owner"][1])
        per.setdefault(row["model"], {}).setdefault(who, 0)
        per[row["model"]][who] += len(changes.get("ids", []))
    job = await Outbox.select(Outbox.state, Outbox.last_error).where(Outbox.dedup_key == f"{ACTOR}:{key}").first()
    state = {"pending": "queued"}.get(job["state"], job["state"]) if job else (
        "kept" if plan.get("mode") == "keep" else "nothing")
    people = await _people(sorted({p for counts in per.values() for p in counts} | set(plan.get("receivers", []))))
    leaver = (await _people([user_id])).get(user_id, {"login": str(user_id), "name": ""})
    kinds_moved = [{"model": m, "label": labels.get(m, m), "count": sum(c.values())} for m, c in per.items()]
    return {
        "key": key, "user_id": user_id, "login": leaver["login"], "name": leaver["name"],
        "mode": plan.get("mode"), "strategy": plan.get("strategy"), "team": plan.get("team"),
        "at": plan["at"], "by": plan["by"], "state": state, "error": job["last_error"] if job else "",
        "kinds": kinds_moved, "total": sum(k["count"] for k in kinds_moved),
        "receivers": [{"user_id": p, "login": people[p]["login"], "name": people[p]["name"],
                       "counts": {m: c.get(p, 0) for m, c in per.items() if c.get(p)},
                       "total": sum(c.get(p, 0) for c in per.values())} for p in sorted(people)],
        "remaining": [k for k in await owned(user_id) if k["count"]],
    }


def report_url(user_id: int, key: str) -> str:
    return f"/admin/users/{user_id}/transfers/{key}"


async def _tell(result: dict[str, Any], admin_id: int | None) -> None:
    """Each receiver learns what they got, the admin the whole report (each once: a re-run tells nobody twice)."""
    from core import runtime
    from core.notifications import notify

    default = runtime.current().settings.default_language
    before = i18n.language()
    labels = {k["model"]: k["label"] for k in result["kinds"]}
    told = await _people([r["user_id"] for r in result["receivers"]] + ([admin_id] if admin_id else []))
    try:
        for receiver in result["receivers"]:
            if not receiver["total"]:
                continue
            i18n.set_language(told[receiver["user_id"]]["language"] or default)
            lines = [f"{gettext(labels[m])}: {n}" for m, n in receiver["counts"].items()]
            await notify(Notification(
                user_id=receiver["user_id"], source="core", kind="info", body="\n".join(lines),
                title=gettext("%(count)s records of %(name)s were transferred to you") % {
                    "count": receiver["total"], "name": result["name"] or result["login"]}),
                dedup_key=f"transfer:{result['key']}:{receiver['user_id']}")
        if admin_id and admin_id in told:
            i18n.set_language(told[admin_id]["language"] or default)
            lines = [f"{gettext(k['label'])}: {k['count']}" for k in result["kinds"]]
            lines += [f"→ {r['login']}: {r['total']}" for r in result["receivers"] if r["total"]]
            await notify(Notification(
                user_id=admin_id, source="core", kind="info", body="\n".join(lines),
                url=report_url(result["user_id"], result["key"]),
                title=gettext("Records of %(name)s transferred: %(count)s") % {
                    "name": result["login"], "count": result["total"]}),
                dedup_key=f"transfer:{result['key']}:admin")
    finally:
        i18n.set_language(before)
