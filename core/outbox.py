"""The outbox: rows written in the caller's transaction, dispatched to the broker after commit.

A row is claimed by one worker at a time (a lease, so a killed worker's job is picked up again), marked
``done`` on success, retried with backoff on errors and ``failed`` once retries are exhausted or the actor
raises :class:`~core.errors.PermanentJobError`. ``failed`` rows are the dead-letter list (``crm jobs failed``)
and can be re-driven.

``dispatched_at`` is when the row's latest message is due (a delayed message: in the future), so the sweep
never sends a row again before its backoff or its wait is over. A running job may keep a short lease on its
row with :func:`renew_lease` (a heartbeat): the sweep sends a row whose lease ran out again at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Any

from core import db
from core.errors import PermanentJobError, RetryLater
from core.jobs import JobSpec, broker
from core.models import Outbox
from core.security import context

log = logging.getLogger("crm.outbox")
_running: ContextVar[int | None] = ContextVar("crm_outbox_running", default=None)  # the row this job runs for
_last_try: ContextVar[bool] = ContextVar("crm_outbox_last_try", default=False)  # no retry follows a failure


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def write(job: JobSpec, payload: dict[str, Any], dedup_key: str | None = None, *,
                light: bool = False) -> int:
    """Insert the row; dispatch it after commit (at once when no transaction is open).

    ``light`` (a request that must stay fast): the row is stamped as dispatched when it is written and its
    message sent after commit without another query; should that send fail, the sweep sends the row again
    once it is ``stale_seconds`` old."""
    json.dumps(payload)  # fail here, in the caller, on a payload that cannot be stored
    if dedup_key is not None:
        existing = await Outbox.select(Outbox.id).where(Outbox.dedup_key == dedup_key).first()
        if existing is not None:
            return int(existing["id"])
    who = context.get().principal
    rows = await Outbox.insert(Outbox(actor=job.name, payload=payload, dedup_key=dedup_key,
                                      requested_by=who.user_id if who else None,
                                      dispatched_at=_now() if light else None)).returning(Outbox.id)
    outbox_id = int(rows[0]["id"])

    async def send() -> None:
        if not light:
            await dispatch([outbox_id])
            return
        try:
            broker().get_actor(job.name).send(outbox_id)
        except Exception as exc:  # broker down: the sweep sends it later
            log.warning("outbox %s not dispatched: %s", outbox_id, exc)

    if db.in_atomic():
        db.after_commit(send)
    else:
        await send()
    return outbox_id


async def dispatch(ids: list[int], delay: float = 0.0) -> int:
    """Send the rows' messages to the broker (to run ``delay`` seconds from now) and stamp them with the time
    they are due; returns how many were sent."""
    if not ids:
        return 0
    due = _now() + dt.timedelta(seconds=delay)  # taken before sending: a message is never due before its stamp
    rows = await Outbox.select(Outbox.id, Outbox.actor).where(Outbox.id.is_in(ids))
    current = broker()
    sent = 0
    for row in rows:
        try:
            current.get_actor(row["actor"]).send_with_options(args=(row["id"],), delay=int(delay * 1000) or None)
        except Exception as exc:  # not declared here, or broker down: the sweep retries
            log.warning("outbox %s not dispatched: %s", row["id"], exc)
            continue
        sent += 1
    await Outbox.update({Outbox.dispatched_at: due}).where(Outbox.id.is_in([r["id"] for r in rows]))
    return sent


async def sweep(stale_seconds: float = 60.0, fresh_seconds: float = 2.0, limit: int = 500) -> int:
    """Re-dispatch rows the broker may have lost: never sent, due long ago and still not finished, or running
    on a worker that stopped renewing its lease (killed) — those at once, once per lease that ran out."""
    now = _now()
    never = (Outbox.dispatched_at.is_null()) & (Outbox.created_at < now - dt.timedelta(seconds=fresh_seconds))
    stale = (Outbox.dispatched_at < now - dt.timedelta(seconds=stale_seconds)) & (
        Outbox.lease_until.is_null() | (Outbox.lease_until < now))
    dead = (Outbox.state == "running") & (Outbox.lease_until < now) & (Outbox.dispatched_at < Outbox.lease_until)
    rows = await Outbox.select(Outbox.id).where(
        Outbox.state.is_in(["pending", "running"]) & (never | stale | dead)).order_by(Outbox.id).limit(limit)
    return await dispatch([int(r["id"]) for r in rows])


def last_attempt() -> bool:
    """Inside a running job: whether a failure now is final (no retry follows). A job whose record shows a
    state ("sending") uses it to set the final one ("failed") only when the retries are spent."""
    return _last_try.get()


async def renew_lease(seconds: float) -> bool:
    """Inside a running job: hold its row ``seconds`` from now (a heartbeat; shorter than the lease the claim
    took is fine). A worker killed mid-job stops renewing, and the sweep sends the job again soon after the
    lease runs out rather than after the job's time limit. False outside a job, or if the row is not ours."""
    outbox_id = _running.get()
    if outbox_id is None:
        return False
    rows = await Outbox.update({Outbox.lease_until: _now() + dt.timedelta(seconds=seconds)}).where(
        (Outbox.id == outbox_id) & (Outbox.state == "running")).returning(Outbox.id)
    return bool(rows)


@contextlib.asynccontextmanager
async def heartbeat(seconds: float) -> AsyncIterator[None]:
    """Inside a running job: hold its row ``seconds`` at a time, renewed every third of that while the block
    runs. A worker killed in the block stops renewing and the sweep sends the job again about ``seconds`` after
    its death, instead of after the job's time limit + 30 s (a short e-mail job stranded for 5.5 minutes). The
    renewals run on the job's event loop: keep ``seconds`` well above the longest stretch the block holds the
    loop without awaiting, or a live run may be taken for dead and run a second time."""
    if not await renew_lease(seconds):
        yield
        return

    async def beat() -> None:
        while True:
            await asyncio.sleep(seconds / 3)
            try:
                await renew_lease(seconds)
            except Exception as exc:  # noqa: BLE001 - a missed beat: the lease still covers two more
                log.warning("lease renewal failed: %s", exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def claim(outbox_id: int, lease_seconds: float) -> dict[str, Any] | None:
    """Take the row for this run, or None if it is done, failed, or leased by another worker."""
    now = _now()
    rows = await Outbox.update({Outbox.state: "running",
                                Outbox.lease_until: now + dt.timedelta(seconds=lease_seconds)}).where(
        (Outbox.id == outbox_id)
        & ((Outbox.state == "pending") | ((Outbox.state == "running") & (Outbox.lease_until < now)))
    ).returning(Outbox.id, Outbox.payload, Outbox.attempts, Outbox.requested_by)
    if not rows:
        return None
    row = rows[0]
    payload = row["payload"]
    return {"payload": json.loads(payload) if isinstance(payload, str) else payload,
            "attempts": int(row["attempts"]), "requested_by": row["requested_by"]}


async def run_job(job: JobSpec, outbox_id: int) -> None:
    """Run one outbox row through its actor (called inside the Dramatiq actor)."""
    claimed = await claim(outbox_id, job.time_limit_ms / 1000 + 30)
    if claimed is None:
        return
    token = _running.set(outbox_id)
    last = _last_try.set(claimed["attempts"] + 1 > job.max_retries)
    try:
        await job.fn(**claimed["payload"])
    except RetryLater as exc:
        # pending again with its attempts, and a fresh message: waiting never uses up the job's retries
        await _finish(outbox_id, "pending", claimed["attempts"], str(exc))
        await dispatch([outbox_id], delay=exc.delay)
        log.debug("job %s #%s waits %.1fs: %s", job.name, outbox_id, exc.delay, exc)
        return
    except PermanentJobError as exc:
        await _finish(outbox_id, "failed", claimed["attempts"] + 1, str(exc))
        log.error("job %s #%s failed for good: %s", job.name, outbox_id, exc)
        await tell_failure(job.name, outbox_id, claimed.get("requested_by"), str(exc))
        return
    except Exception as exc:
        attempts = claimed["attempts"] + 1
        message = f"{type(exc).__name__}: {exc}"
        if attempts > job.max_retries:
            await _finish(outbox_id, "failed", attempts, message)
            log.error("job %s #%s failed after %s attempts: %s", job.name, outbox_id, attempts, message)
            await tell_failure(job.name, outbox_id, claimed.get("requested_by"), message)
            return
        # Dramatiq retries with backoff; the row is stamped with the latest time that retry can be due, so the
        # sweep does not send it again (and run it early) while Dramatiq's message waits
        await _finish(outbox_id, "pending", attempts, message, due=_now() + dt.timedelta(
            milliseconds=min(2 * job.min_backoff_ms * 2 ** min(attempts - 1, 32), job.max_backoff_ms)))
        raise
    finally:
        _running.reset(token)
        _last_try.reset(last)
    await _finish(outbox_id, "done", claimed["attempts"] + 1, "")


async def tell_failure(actor: str, outbox_id: int, requested_by: int | None, message: str) -> None:
    """Background work failed for good: the user who asked for it and the admins are told why, with a link to
    the failed-jobs list. Never raises: telling must not hide the failure itself."""
    from core.hooks import Notification
    from core.i18n import gettext
    from core.notifications import notify, notify_admins

    title = gettext("Background work failed: %(job)s") % {"job": actor}
    try:
        if requested_by:
            await notify(Notification(user_id=int(requested_by), title=title, body=message[:2000], kind="error",
                                      source=actor.split(".", 1)[0]), dedup_key=f"job-failed:{outbox_id}")
        await notify_admins(title, message[:2000], "/admin/jobs", source=actor.split(".", 1)[0],
                            dedup_key=f"job-failed:{outbox_id}:admin", besides=requested_by)
    except Exception:
        log.exception("could not tell anyone that job %s #%s failed", actor, outbox_id)


async def _finish(outbox_id: int, state: str, attempts: int, error: str, due: dt.datetime | None = None) -> None:
    values: dict[Any, Any] = {Outbox.state: state, Outbox.attempts: attempts, Outbox.last_error: error,
                              Outbox.lease_until: None}
    if state == "done":
        values[Outbox.done_at] = _now()
    if due is not None:
        values[Outbox.dispatched_at] = due
    await Outbox.update(values).where(Outbox.id == outbox_id)


async def failed(limit: int = 100) -> list[dict[str, Any]]:
    """The dead-letter list, newest first."""
    return list(await Outbox.select(Outbox.id, Outbox.actor, Outbox.attempts, Outbox.last_error,
                                    Outbox.created_at).where(Outbox.state == "failed")
                .order_by(Outbox.id, ascending=False).limit(limit))


async def retry(ids: list[int] | None = None) -> int:
    """Re-drive failed rows (all of them when ``ids`` is None)."""
    where: Any = Outbox.state == "failed"
    if ids:
        where = where & Outbox.id.is_in(ids)
    rows = await Outbox.update({Outbox.state: "pending", Outbox.attempts: 0}).where(where).returning(Outbox.id)
    return await dispatch([int(r["id"]) for r in rows])
