"""Push orders to the ERP exactly once in effect, push cancellations with a conflict check, pull invoices.

Exactly once, step by step (see docs/finance.md):
1. the order's confirmation wrote an outbox row in its own transaction (``push-order:<id>``: one per order);
2. the job claims the binding row ``(backend, model, local_id)`` — unique, so two workers share one row —
   with a lease (``locked_until``, renewed every third of it while the run lasts): a second runner for the
   same record backs off and retries later, a killed runner's lease runs out within `LEASE`. No transaction
   stays open while the ERP is called;
3. the backend finds the ERP document by our deterministic reference before creating one, so a run that
   died between "ERP created it" and "binding written" finishes the existing document instead of making a
   second;
4. the binding records external id, number, state, write marker, ``sync_date`` and the payload hash.

A transient failure (ERP unreachable, timeout, 5xx, busy) costs each order the failed call carried ONE attempt,
whether the call carried one order or a batch of twenty, and sets the order's next try (``retry_at``, backoff
1 s, 4 s, 16 s, 64 s, 256 s, then every 5 min); no job or batch takes the order before that, and its own job
waits for it without using the job's attempts. The `MAX_TRANSIENT`-th failed try makes it a failed entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NoReturn

from piccolo.columns import Column

from core import db, jobs, outbox
from core.errors import ConfigError, PermanentJobError, RetryLater
from erp_bridge import connection, mirror, sales
from erp_bridge.backends.base import (
    ErpBackend,
    ErpConflictError,
    ErpError,
    ErpPermanentError,
    ErpTransientError,
    OrderPayload,
    Pushed,
    RemoteInvoice,
    RemoteOrder,
)
from erp_bridge.models import Binding, PullCursor

log = logging.getLogger("erp_bridge.sync")
# The per-record lease, renewed every third of it while its run lasts (however slow the ERP: the Tryton backend's
# calls may take 30 s each), so a live runner never loses its lock; a killed runner's lock frees itself within it
# and its orders are taken again (see docs/finance.md, "Exactly once in effect").
LEASE = dt.timedelta(seconds=float(os.environ.get("CRM_X_ERP_LEASE_SECONDS", "10")))
PAGE = 100
# Orders pushed together by one job (Tryton: one create, one call per workflow button for all of them).
BATCH = max(1, int(os.environ.get("CRM_X_ERP_BATCH", "20")))
MAX_TRANSIENT = 10  # failed tries of one order before it is a failed entry
# After an order's n-th failed try, its next waits RETRY_MIN × 4^(n-1), at most RETRY_MAX: 1, 4, 16, 64, 256 s, then
# 300 s — its 10 tries span ~26 minutes, as docs/finance.md says. Settings, so a test can make an outage short.
RETRY_MIN = float(os.environ.get("CRM_X_ERP_RETRY_MIN_SECONDS", "1"))
RETRY_MAX = float(os.environ.get("CRM_X_ERP_RETRY_MAX_SECONDS", "300"))


def backoff(failed: int) -> float:
    """Seconds between an order's ``failed``-th failed try and its next."""
    return min(RETRY_MIN * 4.0 ** max(0, min(failed - 1, 30)), RETRY_MAX)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Busy(RetryLater):
    """Another runner holds this record's lock — often a batch that took it along: run again when that is
    likely over (at most when the lease runs out), without using up an attempt."""


class Waiting(RetryLater):
    """This record's last try failed transiently (in any job's batch) and its next is not due yet: run again
    then, without using up an attempt of the job."""


@dataclass(frozen=True)
class Claim:
    backend: connection.Backend
    binding_id: int
    state: str
    external_id: str
    remote_marker: str
    payload_hash: str
    remote_state: str
    attempts: int
    until: dt.datetime | None = None  # the lease this claim wrote: the run's fencing token (see `_Lease`)


async def claim(cfg: connection.Backend, order: sales.OrderRef, operation: str) -> Claim:
    """Take the per-record lock of ``order`` (creating its binding on first sight)."""
    async with db.atomic():
        where = (Binding.backend == cfg.id) & (Binding.model == sales.ORDER_MODEL) & (Binding.local_id == order.id)
        row = await db.for_update(Binding.select().where(where)).first()
        if row is None:
            await Binding.insert(Binding(backend=cfg.id, model=sales.ORDER_MODEL, local_id=order.id,
                                         reference=order.reference, state="in_flight", operation=operation))
            row = await Binding.select().where(where).first()
        if row["locked_until"] is not None and row["locked_until"] > now():
            left = (row["locked_until"] - now()).total_seconds()
            raise Busy(f"{order.reference} is being synced by another job", delay=min(max(left, 1.0), 10.0))
        if row["retry_at"] is not None and row["retry_at"] > now():
            left = (row["retry_at"] - now()).total_seconds()
            raise Waiting(f"{order.reference}: next try in {left:.1f}s ({row['attempts']} of {MAX_TRANSIENT} failed: "
                          f"{row['last_error'][:300]})", delay=max(left, 0.05))
        until = now() + LEASE
        await Binding.update({Binding.locked_until: until, Binding.operation: operation,
                              Binding.updated_at: now()}).where(Binding.id == row["id"])
    return dataclasses.replace(_claim_of(cfg, row), until=until)


def _claim_of(cfg: connection.Backend, row: dict[str, Any]) -> Claim:
    return Claim(cfg, row["id"], row["state"], row["external_id"], row["remote_marker"], row["payload_hash"],
                 row["remote_state"], row["attempts"])


async def _release(binding_id: int | list[int], **values: Any) -> None:
    """Free the lock of one binding (or several) and write ``values`` with it."""
    changes: dict[Column | str, Any] = {Binding._meta.get_column_by_name(k): v for k, v in values.items()}
    changes[Binding.locked_until] = None
    changes[Binding.updated_at] = now()
    if values.get("state") in ("synced", "failed"):
        changes[Binding.retry_at] = None  # final: a re-drive starts from a clean slate
    ids = binding_id if isinstance(binding_id, list) else [binding_id]
    if ids:
        await Binding.update(changes).where(Binding.id.is_in(ids))


def _message(exc: ErpError) -> str:
    remote = f" (ERP: {exc.remote_message})" if exc.remote_message and exc.remote_message not in exc.message else ""
    return f"{exc.message}{remote}"


async def _call(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def _fail(binding_id: int, message: str) -> None:
    await _release(binding_id, state="failed", last_error=message[:4000])
    raise PermanentJobError(message)


async def _charge(ids: list[int], exc: ErpTransientError) -> dict[int, int]:
    """One failed try for each of these bindings — all carried by the same ERP call, so one attempt each however
    many orders that call carried: release them with their next try after the backoff, or, at the
    `MAX_TRANSIENT`-th, as failed entries. Returns each binding's failed tries so far."""
    if not ids:
        return {}
    message = _message(exc)
    rows = await Binding.select(Binding.id, Binding.attempts).where(Binding.id.is_in(ids))
    tries = {int(r["id"]): int(r["attempts"]) + 1 for r in rows}
    async with db.atomic():
        for n in sorted(set(tries.values())):
            group = [i for i, t in tries.items() if t == n]
            if n >= MAX_TRANSIENT:
                await _release(group, state="failed", attempts=n,
                               last_error=f"gave up after {n} attempts: {message}"[:4000])
            else:
                await _release(group, attempts=n, retry_at=now() + dt.timedelta(seconds=backoff(n)),
                               last_error=message[:4000])
    return tries


async def _transient(held: Claim, exc: ErpTransientError, ids: list[int] | None = None) -> NoReturn:
    """The ERP call carrying this job's order (and ``ids``, the rest of its batch) failed transiently: charge
    each one try, then wait for this order's next (`Waiting`: the job's own attempts are not used) — or, if that
    was its last, fail the job."""
    tries = await _charge([held.binding_id, *(ids or [])], exc)
    n = tries.get(held.binding_id, held.attempts + 1)
    if n >= MAX_TRANSIENT:
        raise PermanentJobError(f"gave up after {n} attempts: {_message(exc)}")
    raise Waiting(f"{_message(exc)} (try {n} of {MAX_TRANSIENT} failed; next in {backoff(n):g}s)"[:4000],
                  delay=backoff(n))


class _Lease:
    """The leases one run holds: the binding ids (a list the batch extends) and the ``locked_until`` values this
    run wrote — its fencing token. Another runner may take a binding only once its lease ran out, and then writes
    its own value; so a row still carrying one of ours is still ours, and a run whose beats came too late (an
    event loop or a database stalled past `LEASE` on a loaded machine) finds out instead of renewing — and so
    resurrecting — a lease another worker has taken since, and does not call the ERP for that order."""

    def __init__(self, ids: list[int], until: dt.datetime | None) -> None:
        self.ids = ids
        self.tokens: set[dt.datetime] = {until} if until is not None else set()

    def add(self, ids: list[int], until: dt.datetime) -> None:
        self.ids.extend(ids)
        self.tokens.add(until)

    async def renew(self) -> set[int]:
        """Extend the leases still ours by `LEASE`; returns their ids (those lost, or released, are left alone)."""
        if not self.ids or not self.tokens:
            return set()
        at = now()
        until = at + LEASE
        self.tokens.add(until)  # before the write: if it lands but its answer is lost, the rows are still ours
        rows = await Binding.update({Binding.locked_until: until}).where(
            Binding.id.is_in(list(self.ids)) & Binding.locked_until.is_in(sorted(self.tokens - {until}))
            & (Binding.locked_until > at)).returning(Binding.id)
        return {int(r["id"]) for r in rows}


@contextlib.asynccontextmanager
async def _heartbeat(lease: _Lease) -> AsyncIterator[None]:
    """While a run holds ``lease``: renew its bindings' leases, and the job's outbox lease, every third of `LEASE`.
    A live run never loses them unless its beats stall past `LEASE`; a killed one's run out within `LEASE`, then
    any push batch takes its orders first and the outbox sweep sends its job again."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            try:
                held = await lease.renew()
                lost = [i for i in lease.ids if i not in held]
                if lost:
                    log.warning("leases of bindings %s ran out or were released during the run", lost[:5])
                await outbox.renew_lease(LEASE.total_seconds())
            except Exception as exc:  # noqa: BLE001 - a missed beat: the lease still covers two more
                log.warning("lease renewal of bindings %s failed: %s", lease.ids[:5], exc)

    await outbox.renew_lease(LEASE.total_seconds())  # the job's row: as short as its bindings' leases
    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _remote_values(remote: RemoteOrder) -> dict[str, Any]:
    return {"external_id": remote.external_id, "external_number": remote.number or "",
            "remote_state": remote.state, "remote_marker": remote.write_marker, "sync_date": now(), "attempts": 0,
            "retry_at": None}


async def expect_push(order_id: int) -> None:
    """Inside the order's confirming transaction: its binding, in flight, so that any push job running before
    this order's own can take it into its batch. Without a configured ERP the push job creates it later."""
    try:
        cfg = await connection.active()
    except ConfigError:
        return
    order = await sales.load_order(order_id)
    where = (Binding.backend == cfg.id) & (Binding.model == sales.ORDER_MODEL) & (Binding.local_id == order_id)
    if order is not None and not await Binding.exists().where(where):
        await Binding.insert(Binding(backend=cfg.id, model=sales.ORDER_MODEL, local_id=order_id,
                                     reference=order.reference, state="in_flight", operation="push"))


@dataclass(frozen=True)
class _Item:
    held: Claim
    order: sales.OrderRef
    payload: OrderPayload
    digest: str


async def push_order(order_id: int) -> str:
    """Create (or finish) the ERP sale of one CRM order — and of up to `BATCH` - 1 other orders waiting for
    theirs, in one batched push; returns what happened to this one, for logs and tests."""
    cfg = await connection.active()
    done = await _settled(cfg, order_id)
    if done:
        return done
    order = await sales.load_order(order_id)
    if order is None:
        return "gone"  # deleted in the CRM before we ran: nothing to send
    backend = connection.open_backend(cfg)
    held = await claim(cfg, order, "push")
    lease = _Lease([held.binding_id], held.until)
    async with _heartbeat(lease):
        return await _push_claimed(cfg, backend, order, held, lease)


async def _push_claimed(cfg: connection.Backend, backend: ErpBackend, order: sales.OrderRef, held: Claim,
                        lease: _Lease) -> str:
    """`push_order` once its order is leased: ``lease`` gets the ids of the orders taken along (kept leased)."""
    try:
        payload = await sales.build_payload(order)
    except sales.PayloadError as exc:
        await _fail(held.binding_id, str(exc))
    digest = sales.payload_hash(payload)
    done = _final(held.state, held.external_id)
    if done:  # settled between the look above and the lock
        await _release(held.binding_id)
        return done
    if order.state == "cancelled" and not held.external_id:
        try:
            found = await _call(backend.find_orders, order.reference)
        except ErpTransientError as exc:
            await _transient(held, exc)
        if not found:  # cancelled before it ever reached the ERP: nothing to create
            await _release(held.binding_id, state="synced", remote_state="", last_error="",
                           payload_hash=digest, sync_date=now())
            return "cancelled before sync"
    items = [_Item(held, order, payload, digest)]
    if order.state != "cancelled":
        items += await _more(cfg, held.binding_id, lease)
    items = await _still_held(lease, items)
    try:
        pushed: list[Pushed] = await _call(backend.push_orders, [i.payload for i in items])
    except ErpTransientError as exc:  # one try for each order of the batch; their own jobs wait for their next
        await _transient(held, exc, [i.held.binding_id for i in items[1:]])
    except ErpError as exc:  # refused for the whole batch (e.g. wrong credentials): each order fails with it
        pushed = [Pushed(i.payload.ref, error=exc) for i in items]
    now_orders = await sales.get_orders([i.order.id for i in items])  # as they are after the push
    async with db.atomic():  # one commit for the others' bindings
        for item, result in zip(items[1:], pushed[1:], strict=True):
            await _settle(item, result, now_orders.get(item.order.id), own=False)
    return await _settle(items[0], pushed[0], now_orders.get(order.id), own=True)


async def _settled(cfg: connection.Backend, order_id: int) -> str | None:
    """A look without a lock: most push jobs find their order already pushed by another job's batch (or failed
    there, with the cause)."""
    row = await Binding.select(Binding.state, Binding.external_id).where(
        (Binding.backend == cfg.id) & (Binding.model == sales.ORDER_MODEL) & (Binding.local_id == order_id)).first()
    return None if row is None else _final(row["state"], row["external_id"])


def _final(state: str, external_id: str) -> str | None:
    """What a push job has left to do with a binding in this state: nothing (why), or the push (None). Synced and
    failed are final until a re-drive, which puts the binding back in flight."""
    if state == "failed":
        return "failed earlier"
    return "already synced" if state == "synced" and external_id else None


async def _still_held(lease: _Lease, items: list[_Item]) -> list[_Item]:
    """The fence before the ERP call that may create sales: renew the run's leases and keep only the orders still
    ours. Another runner may have taken an order whose lease ran out (our beats stalled); that runner pushes it,
    so pushing it here too would race it to a second ERP sale. Our own order lost: `Busy`, nothing released (the
    row is the other runner's now)."""
    held = await lease.renew()
    if items[0].held.binding_id not in held:
        raise Busy(f"{items[0].order.reference}: the lease ran out before the ERP call; another job has it",
                   delay=LEASE.total_seconds())
    lost = [i.order.reference for i in items if i.held.binding_id not in held]
    if lost:
        log.warning("leases of %s ran out before the ERP call: left to the runner that took them", lost[:5])
    return [i for i in items if i.held.binding_id in held]


async def _more(cfg: connection.Backend, own: int, lease: _Lease) -> list[_Item]:
    """Other orders waiting for their push (binding in flight, lease free or run out, next try due), leased with
    this one — first those whose runner died (a lease that ran out unreleased), then the oldest. Their own jobs
    later find them synced; if this runner dies, the lease runs out and they are taken again. Taking an order
    along costs it no attempt; a failed try does (`_charge`)."""
    if BATCH <= 1:
        return []
    at = now()
    waiting = ((Binding.backend == cfg.id) & (Binding.model == sales.ORDER_MODEL) & (Binding.state == "in_flight")
               & (Binding.operation == "push") & (Binding.id != own)
               & (Binding.retry_at.is_null() | (Binding.retry_at <= at)))
    async with db.atomic():
        rows = list(await db.for_update(Binding.select().where(waiting & (Binding.locked_until < at)).order_by(
            Binding.id).limit(BATCH - 1), skip_locked=True))
        if len(rows) < BATCH - 1:
            rows += await db.for_update(Binding.select().where(waiting & Binding.locked_until.is_null()).order_by(
                Binding.id).limit(BATCH - 1 - len(rows)), skip_locked=True)
        until = now() + LEASE
        if rows:
            await Binding.update({Binding.locked_until: until, Binding.updated_at: now()}).where(
                Binding.id.is_in([r["id"] for r in rows]))
    lease.add([int(r["id"]) for r in rows], until)
    items = []
    orders = await sales.get_orders([int(r["local_id"]) for r in rows])
    for row in rows:
        held = _claim_of(cfg, row)
        order = orders.get(int(row["local_id"]))
        if order is None or order.state == "cancelled":
            await _release(held.binding_id)  # its own job knows what to do
            continue
        try:
            payload = await sales.build_payload(order)
        except sales.PayloadError as exc:
            await _release(held.binding_id, state="failed", last_error=str(exc)[:4000])
            continue
        items.append(_Item(held, order, payload, sales.payload_hash(payload)))
    return items


async def _settle(item: _Item, result: Pushed, current: sales.OrderRef | None, *, own: bool) -> str:
    """Record what the ERP made of one order of a batch. Errors of this job's own order raise (the kernel
    retries or lists it), another order's are written to its binding for its own job to find."""
    held = item.held
    if result.error is not None or result.order is None:
        exc = result.error or ErpPermanentError(f"the ERP returned nothing for {item.order.reference}")
        if isinstance(exc, ErpTransientError):
            if own:
                await _transient(held, exc)
            await _charge([held.binding_id], exc)
            return "retry"
        if own:
            await _fail(held.binding_id, _message(exc))
        await _release(held.binding_id, state="failed", last_error=_message(exc)[:4000], payload_hash=item.digest)
        return "failed"
    remote = result.order
    async with db.atomic():
        values = {**_remote_values(remote), "state": "synced", "payload_hash": item.digest, "last_error": ""}
        if result.existed:
            values["reruns"] = Binding.reruns + 1
        if current is not None and current.state == "cancelled" and remote.state != "cancelled":
            await jobs.enqueue("erp_bridge.cancel_order", dedup_key=f"cancel-order:{current.id}",
                               order_id=current.id)
        elif current is not None and current != item.order and await _edited(current, item.digest):
            values["state"] = "failed"
            values["last_error"] = (f"order {item.order.reference} was edited in the CRM while it was being sent: "
                                    "the ERP holds the earlier version; review both, then re-drive")
        await _release(held.binding_id, **values)
    return "resumed" if result.existed else "created"


async def _edited(order: sales.OrderRef, digest: str) -> bool:
    try:
        return sales.payload_hash(await sales.build_payload(order)) != digest
    except sales.PayloadError:  # e.g. the address was removed meanwhile: it changed all the same
        return True


async def cancel_order(order_id: int) -> str:
    """Cancel the ERP sale of a cancelled CRM order, unless someone changed it in the ERP since our sync."""
    order = await sales.load_order(order_id)
    if order is None or order.state != "cancelled":
        return "not cancelled"
    cfg = await connection.active()
    backend = connection.open_backend(cfg)
    held = await claim(cfg, order, "cancel")
    async with _heartbeat(_Lease([held.binding_id], held.until)):
        return await _cancel_claimed(backend, order, held)


async def _cancel_claimed(backend: ErpBackend, order: sales.OrderRef, held: Claim) -> str:
    if held.remote_state == "cancelled":
        await _release(held.binding_id, state="synced", last_error="")
        return "already cancelled"
    if not held.external_id:
        await _release(held.binding_id)
        # the push has not finished: run it (it sees the cancellation and queues this job again)
        raise ErpTransientError(f"{order.reference} is not in the ERP yet")
    try:
        remote = await _call(backend.cancel_order, held.external_id, held.remote_marker)
    except ErpTransientError as exc:
        await _transient(held, exc)
    except ErpConflictError as exc:
        await _fail(held.binding_id, f"not cancelled in the ERP: {_message(exc)}; check the ERP document, "
                                     "then re-drive to cancel the version it holds now")
    except ErpPermanentError as exc:
        await _fail(held.binding_id, f"not cancelled in the ERP: {_message(exc)}")
    await _release(held.binding_id, state="synced", last_error="", **_remote_values(remote))
    return "cancelled"


async def pull_invoices(limit: int = PAGE) -> int:
    """Pull invoices changed since the stored cursor (keyset pages), mirror them, update order status and
    publish ``erp_bridge_invoice_paid`` once per newly paid invoice. Returns how many were pulled."""
    cfg = await connection.active()
    backend = connection.open_backend(cfg)
    pulled = 0
    while True:
        where = (PullCursor.backend == cfg.id) & (PullCursor.kind == "invoice")
        row = await PullCursor.select(PullCursor.cursor).where(where).first()
        page: list[RemoteInvoice] = await _call(backend.pull_invoices, row["cursor"] if row else None, limit)
        if not page:
            return pulled
        gone = await mirror.vanished(cfg, backend, page)  # asks the ERP: before the transaction
        async with db.atomic():
            await mirror.store(cfg, page, gone)
            if row is None:
                await PullCursor.insert(PullCursor(backend=cfg.id, kind="invoice", cursor=page[-1].cursor))
            else:
                await PullCursor.update({PullCursor.cursor: page[-1].cursor, PullCursor.updated_at: now()}).where(
                    where)
        pulled += len(page)
        if len(page) < limit:
            return pulled


async def queue_pending_cancellations() -> int:
    """Cancelled CRM orders whose ERP sale is still live: queue their cancel job (idempotent by dedup key).
    This is the safety net that needs no event from crm_sales."""
    cancelled = set(await sales.order_ids(state="cancelled"))
    if not cancelled:
        return 0
    rows = await Binding.select(Binding.local_id).where(
        (Binding.model == sales.ORDER_MODEL) & (Binding.state == "synced") & (Binding.external_id != "")
        & (Binding.remote_state != "cancelled"))
    queued = 0
    for r in rows:
        if r["local_id"] in cancelled:
            await jobs.enqueue("erp_bridge.cancel_order", dedup_key=f"cancel-order:{r['local_id']}",
                               order_id=int(r["local_id"]))
            queued += 1
    return queued


async def health() -> dict[str, Any]:
    cfg = await connection.active()
    backend: ErpBackend = connection.open_backend(cfg)
    result: dict[str, Any] = await _call(backend.health)
    return {"name": cfg.name, "kind": cfg.kind, **result}
