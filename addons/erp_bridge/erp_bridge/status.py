"""Sync status as pages, panels, the API and the CLI show it; re-driving failed syncs."""

from __future__ import annotations

import asyncio
from typing import Any

from core import jobs, outbox
from core.errors import NotFound
from core.i18n import N_
from core.models import Outbox
from erp_bridge import connection, sales
from erp_bridge.models import Binding, RemoteInvoice
from erp_bridge.money import minor

_ACTOR_OF = {"push": "erp_bridge.push_order", "cancel": "erp_bridge.cancel_order"}
_LABEL = {"in_flight": "queued", "synced": "sent", "failed": "failed"}
_BINDING_KEYS = ("reference", "external_number", "external_id", "remote_state", "invoice_number", "is_paid",
                 "sync_date", "last_error", "operation", "attempts")
_NOT_SENT: dict[str, Any] = {"state": "not_sent", "binding_id": None, "reference": "", "external_number": "",
                             "external_id": "", "remote_state": "", "invoice_number": "", "is_paid": False,
                             "sync_date": None, "last_error": "", "operation": "", "attempts": 0}


async def order_status(order_id: int) -> dict[str, Any]:
    """The order's sync as the order page shows it: ``state`` is the binding's (``not_sent`` | ``in_flight`` |
    ``synced`` | ``failed``), ``label`` what a user reads (``not_sent`` | ``queued`` | ``sent`` | ``failed``)."""
    row = await Binding.select().where((Binding.model == sales.ORDER_MODEL) & (Binding.local_id == order_id)
                                       ).order_by(Binding.id).first()
    if row is None:
        waiting = await Outbox.count().where((Outbox.dedup_key == f"push-order:{order_id}")
                                             & Outbox.state.is_in(["pending", "running"]))
        return {**_NOT_SENT, "label": "queued" if waiting else "not_sent", "order_id": order_id}
    return {"state": row["state"], "label": _LABEL.get(row["state"], row["state"]), "order_id": order_id,
            "binding_id": row["id"], **{k: row[k] for k in _BINDING_KEYS}}


async def invoices_of_order(reference: str) -> list[dict[str, Any]]:
    """The ERP invoices of one order (by our reference) as last pulled, newest first, amounts in minor units."""
    rows = await RemoteInvoice.select(
        RemoteInvoice.external_id, RemoteInvoice.number, RemoteInvoice.state, RemoteInvoice.currency,
        RemoteInvoice.untaxed, RemoteInvoice.tax, RemoteInvoice.total, RemoteInvoice.amount_to_pay,
        RemoteInvoice.is_paid, RemoteInvoice.invoice_date).where(
        (RemoteInvoice.order_reference == reference) & RemoteInvoice.deleted_at.is_null()).order_by(
        RemoteInvoice.id, ascending=False).limit(50)
    return [{**r, **{k: minor(r[k], r["currency"]) for k in ("untaxed", "tax", "total", "amount_to_pay")}}
            for r in rows]


async def invoices_of_person(person_id: int) -> list[dict[str, Any]]:
    refs = [o.reference for o in (await sales.get_orders(await sales.order_ids(person_id=person_id))).values()]
    if not refs:
        return []
    return list(await RemoteInvoice.select(
        RemoteInvoice.external_id, RemoteInvoice.number, RemoteInvoice.order_reference, RemoteInvoice.state,
        RemoteInvoice.currency, RemoteInvoice.total, RemoteInvoice.amount_to_pay, RemoteInvoice.is_paid,
        RemoteInvoice.invoice_date).where(
        RemoteInvoice.order_reference.is_in(refs) & RemoteInvoice.deleted_at.is_null()).order_by(
        RemoteInvoice.id, ascending=False).limit(100))


async def failed(limit: int = 200) -> list[dict[str, Any]]:
    return list(await Binding.select(
        Binding.id, Binding.local_id, Binding.reference, Binding.operation, Binding.last_error, Binding.attempts,
        Binding.updated_at).where(Binding.state == "failed").order_by(Binding.id, ascending=False).limit(limit))


async def redrive(binding_id: int) -> str:
    """Send a failed sync again. For a refused cancellation (the ERP document changed) the person re-driving
    has reviewed it: the binding takes the ERP's current write marker, so the cancel applies to that version."""
    row = await Binding.select().where(Binding.id == binding_id).first()
    if row is None:
        raise NotFound(N_("binding %(id)s not found") % {"id": binding_id})
    if row["state"] != "failed":
        return str(row["state"])
    values: dict[Any, Any] = {Binding.state: "in_flight", Binding.locked_until: None, Binding.attempts: 0}
    if row["operation"] == "cancel" and row["external_id"]:
        backend = connection.open_backend(await connection.active())
        remote = await asyncio.to_thread(backend.get_order, row["external_id"])
        values[Binding.remote_marker] = remote.write_marker
    await Binding.update(values).where(Binding.id == binding_id)
    actor = _ACTOR_OF.get(row["operation"], "erp_bridge.push_order")
    key = f"{'push' if actor.endswith('push_order') else 'cancel'}-order:{row['local_id']}"
    dead = await Outbox.select(Outbox.id).where((Outbox.dedup_key == key) & (Outbox.state == "failed"))
    if dead:
        await outbox.retry([int(r["id"]) for r in dead])
    else:  # the job itself ended (e.g. an edit during sync was flagged): a fresh one
        await jobs.enqueue(actor, dedup_key=f"{key}:redrive:{row['id']}:{row['updated_at'].timestamp()}",
                           order_id=int(row["local_id"]))
    return "in_flight"


async def redrive_all() -> int:
    rows = await Binding.select(Binding.id).where(Binding.state == "failed")
    for r in rows:
        await redrive(int(r["id"]))
    return len(rows)
