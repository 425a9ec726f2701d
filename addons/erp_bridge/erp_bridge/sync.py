"""Push orders to the ERP exactly once in effect, push cancellations with a conflict check, pull invoices.

Exactly once, step by step (see docs/finance.md):
1. the order's confirmation wrote an outbox row in its own transaction (``push-order:<id>``: one per order);
2. the job claims the binding row ``(backend, model, local_id)`` — unique, so two workers share one row —
   with a lease (``locked_until``): a second runner for the same record backs off and retries later, a
   killed runner's lease simply expires. No transaction stays open while the ERP is called;
3. the backend finds the ERP document by our deterministic reference before creating one, so a run that
   died between "ERP created it" and "binding written" finishes the existing document instead of making a
   second;
4. the binding records external id, number, state, write marker, ``sync_date`` and the payload hash.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any

from piccolo.columns import Column

from core import db, jobs
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
# The per-record lease: longer than the slowest push (the Tryton backend's calls time out after 30 s each), so a
# live runner never loses its lock; a killed runner's lock frees itself when it runs out.
LEASE = dt.timedelta(seconds=float(os.environ.get("CRM_X_ERP_LEASE_SECONDS", "120")))
PAGE = 100
# Orders pushed together by one job (Tryton: one create, one call per workflow button for all of them).
BATCH = max(1, int(os.environ.get("CRM_X_ERP_BATCH", "20")))
MAX_TRANSIENT = 10  # the actors' max_retries: the last transient failure marks the binding failed too


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Busy(RetryLater):
    """Another runner holds this record's lock — often a batch that took it along: run again when that is
    likely over (at most when the lease runs out), without using up an attempt."""


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
        await Binding.update({Binding.locked_until: now() + LEASE, Binding.operation: operation,
                              Binding.attempts: Binding.attempts + 1, Binding.updated_at: now()}).where(
            Binding.id == row["id"])
    return _claim_of(cfg, row)


def _claim_of(cfg: connection.Backend, row: dict[str, Any]) -> Claim:
    return Claim(cfg, row["id"], row["state"], row["external_id"], row["remote_marker"], row["payload_hash"],
                 row["remote_state"], row["attempts"])


async def _release(binding_id: int | list[int], **values: Any) -> None:
    """Free the lock of one binding (or several) and write ``values`` with it."""
    changes: dict[Column | str, Any] = {Binding._meta.get_column_by_name(k): v for k, v in values.items()}
    changes[Binding.locked_until] = None
    changes[Binding.updated_at] = now()
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


async def _transient(held: Claim, exc: ErpTransientError) -> None:
    """Retry later (the kernel backs off) — unless this was the last try: then it is a failed entry."""
    if held.attempts + 1 >= MAX_TRANSIENT:
        await _fail(held.binding_id, f"gave up after {held.attempts + 1} attempts: {_message(exc)}")
    await _release(held.binding_id, last_error=_message(exc)[:4000])
    raise exc


def _remote_values(remote: RemoteOrder) -> dict[str, Any]:
    return {"external_id": remote.external_id, "external_number": remote.number or "",
            "remote_state": remote.state, "remote_marker": remote.write_marker, "sync_date": now(), "attempts": 0}


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
        items += await _more(cfg, held.binding_id)
    try:
        pushed: list[Pushed] = await _call(backend.push_orders, [i.payload for i in items])
    except ErpTransientError as exc:
        await _release([i.held.binding_id for i in items[1:]], last_error=_message(exc)[:4000])  # their jobs retry
        await _transient(held, exc)
    except ErpError as exc:  # refused for the whole batch (e.g. wrong credentials): each order fails with it
        pushed = [Pushed(i.payload.ref, error=exc) for i in items]
    now_orders = await sales.get_orders([i.order.id for i in items])  # as they are after the push
    async with db.atomic():  # one commit for the others' bindings
        for item, result in zip(items[1:], pushed[1:], strict=True):
            await _settle(item, result, now_orders.get(item.order.id), own=False)
    return await _settle(items[0], pushed[0], now_orders.get(order_id), own=True)


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


async def _more(cfg: connection.Backend, own: int) -> list[_Item]:
    """Other orders waiting for their push (binding in flight, lease free or run out), leased with this one.
    Their own jobs later find them synced; if this runner dies, the lease runs out and they are taken again."""
    if BATCH <= 1:
        return []
    free = Binding.locked_until.is_null() | (Binding.locked_until < now())
    async with db.atomic():
        rows = await db.for_update(Binding.select().where(
            (Binding.backend == cfg.id) & (Binding.model == sales.ORDER_MODEL) & (Binding.state == "in_flight")
            & (Binding.operation == "push") & (Binding.id != own) & free).order_by(Binding.id).limit(BATCH - 1),
            skip_locked=True)
        if rows:
            await Binding.update({Binding.locked_until: now() + LEASE, Binding.attempts: Binding.attempts + 1,
                                  Binding.updated_at: now()}).where(Binding.id.is_in([r["id"] for r in rows]))
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
            await _release(held.binding_id, last_error=_message(exc)[:4000])
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
