"""Running a rule's actions on a record, once per (rule, event), whatever the broker redelivers.

A run is claimed by one worker at a time (state ``running`` with a lease shorter than the job's, so a killed
worker's runs are free again when the outbox sends its job again) and counts the actions it has done
(``step``): a retried run resumes after the last one done.

- Database actions run in the same transaction as the run's progress: each happens exactly once. A batch of
  runs of a rule without external actions shares one transaction, each run in its own savepoint, so one failing
  run rolls back alone and is logged ``failed`` with its error.
- External actions (e-mail, webhooks) run outside any transaction, then the progress is saved: at least once,
  with the action's key (rule, event, action) passed on as an idempotency key. A failure that may pass
  (network, 5xx) leaves the run ``pending`` and the job is retried with backoff, up to :data:`MAX_ATTEMPTS`
  attempts; ``PermanentJobError`` fails it at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from core import db
from core.automation import events, registry
from core.automation.models import AutomationRun
from core.automation.registry import Rule
from core.bulk import any_of
from core.errors import CrmError, PermanentJobError
from core.hooks import AutomationContext, AutomationModel

log = logging.getLogger("crm.automation")

LEASE_SECONDS = 240.0  # below the run job's outbox lease (time limit + 30 s): free again before it is resent
MAX_ATTEMPTS = 3
BATCH = 1000
_COLUMNS = (AutomationRun.id, AutomationRun.rule_id, AutomationRun.key, AutomationRun.model,
            AutomationRun.record_id, AutomationRun.chain, AutomationRun.snapshot, AutomationRun.step,
            AutomationRun.attempts, AutomationRun.result, AutomationRun.trigger)


class RunsLeft(CrmError):
    """Some runs failed in a way that may pass: the job is retried with backoff."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _loaded(value: Any, empty: Any) -> Any:
    return registry._loaded(value, empty)


async def claim(ids: list[int]) -> list[dict[str, Any]]:
    """Take the runs among ``ids`` that are pending, or running on a worker whose lease ran out."""
    if not ids:
        return []
    now = _now()
    rows = await AutomationRun.update({
        AutomationRun.state: "running", AutomationRun.lease_until: now + dt.timedelta(seconds=LEASE_SECONDS),
        AutomationRun.attempts: AutomationRun.attempts + 1,
    }).where(any_of(AutomationRun.id, ids) & (
        (AutomationRun.state == "pending")
        | ((AutomationRun.state == "running") & (AutomationRun.lease_until < now)))).returning(*_COLUMNS)
    return sorted((dict(r) for r in rows), key=lambda r: int(r["id"]))


async def _finish(run_id: int, state: str, *, step: int | None = None, result: list[str] | None = None,
                  error: str = "") -> None:
    values: dict[Any, Any] = {AutomationRun.state: state, AutomationRun.lease_until: None,
                              AutomationRun.error: error[:4000]}
    if state in ("done", "failed", "skipped"):
        values[AutomationRun.finished_at] = _now()
    if step is not None:
        values[AutomationRun.step] = step
    if result is not None:
        values[AutomationRun.result] = result
    await AutomationRun.update(values).where(AutomationRun.id == run_id)


async def execute(ids: list[int]) -> None:
    """Run the runs ``ids`` (the job of a batch); raises :class:`RunsLeft` when some must be tried again.

    Runs of rules with database actions only are claimed, done and marked in one transaction per batch (a
    worker killed before the commit leaves them pending, as if never taken); runs with external actions are
    claimed in that transaction and done afterwards, one by one, outside it."""
    left = 0
    for start in range(0, len(ids), BATCH):
        outside: list[tuple[Rule, AutomationModel, dict[str, Any], dict[str, Any] | None]] = []
        async with db.atomic():
            claimed = await claim(ids[start:start + BATCH])
            if claimed:
                outside = await _execute(claimed)
        for position, (rule, am, row, record) in enumerate(outside):
            try:
                left += await _run_alone(rule, am, row, record)
            except BaseException:
                # give the runs not done back at once (a retry of the job takes them again)
                rest = [int(r["id"]) for _, _, r, _ in outside[position:]]
                await AutomationRun.update({AutomationRun.state: "pending", AutomationRun.lease_until: None}).where(
                    any_of(AutomationRun.id, rest) & (AutomationRun.state == "running"))
                raise
    if left:
        raise RunsLeft(f"{left} automation run(s) will be tried again")


async def _execute(claimed: list[dict[str, Any]]
                   ) -> list[tuple[Rule, AutomationModel, dict[str, Any], dict[str, Any] | None]]:
    """Inside the claim's transaction: skip what may not run, do the runs of database-only rules; the runs
    with external actions are returned, to be done after the commit."""
    compiled = await registry.rules()
    by_rule: dict[int, list[dict[str, Any]]] = {}
    for row in claimed:
        by_rule.setdefault(int(row["rule_id"]), []).append(row)
    outside = []
    for rule_id, rows in by_rule.items():
        rule = compiled.get(rule_id)
        am = await registry.model(rule.model) if rule is not None else None
        if rule is None or am is None or not rule.is_active or rule.error:
            why = "not run: the rule was deleted" if rule is None else (
                f"not run: {rule.error}" if rule.error or am is None else "not run: the rule was disabled")
            await AutomationRun.update({
                AutomationRun.state: "skipped", AutomationRun.lease_until: None, AutomationRun.error: why,
                AutomationRun.finished_at: _now()}).where(any_of(AutomationRun.id, [int(r["id"]) for r in rows]))
            continue
        records = await _records(am, rows)
        if rule.is_external:
            outside += [(rule, am, row, records.get(int(row["id"]))) for row in rows]
        else:
            await _run_batch(rule, am, rows, records)
    return outside


async def _records(am: AutomationModel, rows: list[dict[str, Any]]) -> dict[int, dict[str, Any] | None]:
    """Per run, the record it acts on: the snapshot taken at the change, else the record as stored now."""
    out: dict[int, dict[str, Any] | None] = {}
    wanted = [r for r in rows if not _loaded(r["snapshot"], {})]
    current: dict[int, dict[str, Any]] = {}
    if wanted:
        table = am.table
        pk = table._meta.primary_key
        columns = [table._meta.get_column_by_name(n) for n in events.columns_of(am)]
        for found in await table.select(*columns).where(any_of(pk, [int(r["record_id"]) for r in wanted])):
            current[int(found["id"])] = events.snapshot(am, found)
    for row in rows:
        snap = _loaded(row["snapshot"], {})
        out[int(row["id"])] = snap or current.get(int(row["record_id"]))
    return out


def _context(rule: Rule, am: AutomationModel, row: dict[str, Any], record: dict[str, Any], index: int
             ) -> AutomationContext:
    step = rule.steps[index]
    return AutomationContext(rule_id=rule.id, rule_name=rule.name, run_id=int(row["id"]),
                             key=f"automation:{row['key']}:{index}", model=rule.model,
                             record_id=int(row["record_id"]), record=record, params=step.params,
                             url=am.url.replace("{id}", str(row["record_id"])) if am.url else "")


async def _actions(rule: Rule, am: AutomationModel, row: dict[str, Any], record: dict[str, Any],
                   lines: list[str]) -> None:
    """The database actions of ``row`` from its step on, inside the caller's transaction."""
    token = events.chain.set((*[int(c) for c in _loaded(row["chain"], [])], rule.id))
    try:
        for index in range(int(row["step"]), len(rule.steps)):
            action = rule.steps[index].action
            assert action is not None
            lines.append(str(await action.run(_context(rule, am, row, record, index)))[:500])
    finally:
        events.chain.reset(token)


async def _savepoint() -> Any:
    transaction = db.current().current_transaction.get()
    return await transaction.savepoint()  # type: ignore[union-attr]


def _bulk_ready(rule: Rule, rows: list[dict[str, Any]], records: dict[int, dict[str, Any] | None]
                ) -> list[dict[str, Any]]:
    """The runs a batch may do together: every action has ``run_many``, the run starts at its first action
    and came from no other rule's change (one loop-protection chain for all)."""
    if not all(s.action is not None and s.action.run_many is not None for s in rule.steps):
        return []
    return [r for r in rows if int(r["step"]) == 0 and records.get(int(r["id"])) is not None
            and not _loaded(r["chain"], [])]


async def _run_together(rule: Rule, am: AutomationModel, rows: list[dict[str, Any]],
                        records: dict[int, dict[str, Any] | None]) -> None:
    """Each action once for all ``rows`` (``run_many``), then the runs marked done, a statement per distinct
    log: what a time-based rule reaching thousands of records costs a few statements per batch."""
    lines: dict[int, list[str]] = {int(r["id"]): [] for r in rows}
    token = events.chain.set((rule.id,))
    try:
        for index, step in enumerate(rule.steps):
            assert step.action is not None and step.action.run_many is not None
            ctxs = [_context(rule, am, r, records[int(r["id"])] or {}, index) for r in rows]
            out = list(await step.action.run_many(ctxs))
            if len(out) != len(rows):
                raise RuntimeError(f"{step.kind}: run_many answered {len(out)} lines for {len(rows)} records")
            for row, line in zip(rows, out, strict=True):
                lines[int(row["id"])].append(str(line)[:500])
    finally:
        events.chain.reset(token)
    groups: dict[tuple[str, ...], list[int]] = {}
    for run_id, said in lines.items():
        groups.setdefault(tuple(said), []).append(run_id)
    now = _now()
    for result, ids in groups.items():
        await AutomationRun.update({
            AutomationRun.state: "done", AutomationRun.step: len(rule.steps), AutomationRun.result: list(result),
            AutomationRun.lease_until: None, AutomationRun.error: "", AutomationRun.finished_at: now,
        }).where(any_of(AutomationRun.id, ids))


async def _run_batch(rule: Rule, am: AutomationModel, rows: list[dict[str, Any]],
                     records: dict[int, dict[str, Any] | None]) -> None:
    async with db.atomic():
        together = _bulk_ready(rule, rows, records)
        if together:
            point = await _savepoint()
            try:
                await _run_together(rule, am, together, records)
            except Exception as exc:  # one record spoils the lot: each in turn, its error in its own run
                await point.rollback_to()
                log.info("automation rule %s: batch of %s failed (%s), one by one", rule.id, len(together), exc)
            else:
                await point.release()
                done = {int(r["id"]) for r in together}
                rows = [r for r in rows if int(r["id"]) not in done]
        for row in rows:
            run_id = int(row["id"])
            record = records.get(run_id)
            if record is None:
                await _finish(run_id, "skipped", error="not run: the record no longer exists")
                continue
            lines = [str(x) for x in _loaded(row["result"], [])]
            point = await _savepoint()
            try:
                await _actions(rule, am, row, record, lines)
            except Exception as exc:
                await point.rollback_to()
                log.info("automation rule %s run %s failed: %s", rule.id, run_id, exc)
                await _finish(run_id, "failed", error=_message(exc))
                continue
            await point.release()
            await _finish(run_id, "done", step=len(rule.steps), result=lines)


def _message(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, CrmError) else str(exc)
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, CrmError) else text


async def _run_alone(rule: Rule, am: AutomationModel, row: dict[str, Any], record: dict[str, Any] | None) -> int:
    """One run with external actions, step by step; 1 if it must be tried again, else 0."""
    run_id = int(row["id"])
    if record is None:
        await _finish(run_id, "skipped", error="not run: the record no longer exists")
        return 0
    lines = [str(x) for x in _loaded(row["result"], [])]
    token = events.chain.set((*[int(c) for c in _loaded(row["chain"], [])], rule.id))
    index = int(row["step"])
    try:
        while index < len(rule.steps):
            action = rule.steps[index].action
            assert action is not None
            ctx = _context(rule, am, row, record, index)
            if action.is_external:
                lines.append(str(await action.run(ctx))[:500])
                await _finish(run_id, "running", step=index + 1, result=lines)
            else:
                async with db.atomic():
                    lines.append(str(await action.run(ctx))[:500])
                    await _finish(run_id, "running", step=index + 1, result=lines)
            index += 1
    except Exception as exc:
        external = (rule.steps[index].action is not None and rule.steps[index].action.is_external)  # type: ignore[union-attr]
        transient = external and not isinstance(exc, (PermanentJobError, CrmError))
        if transient and int(row["attempts"]) < MAX_ATTEMPTS:
            await _finish(run_id, "pending", error=f"attempt {row['attempts']}: {_message(exc)}")
            return 1
        await _finish(run_id, "failed", error=_message(exc))
        return 0
    finally:
        events.chain.reset(token)
    await _finish(run_id, "done", step=len(rule.steps), result=lines)
    return 0


async def stale(limit: int = 5000, minutes: int = 15) -> list[int]:
    """Runs a lost job left behind: pending for long, or running on a worker whose lease ran out."""
    now = _now()
    rows = await AutomationRun.select(AutomationRun.id).where(
        ((AutomationRun.state == "pending") & (AutomationRun.created_at < now - dt.timedelta(minutes=minutes)))
        | ((AutomationRun.state == "running") & (AutomationRun.lease_until < now))).order_by(
        AutomationRun.id).limit(limit)
    return [int(r["id"]) for r in rows]
