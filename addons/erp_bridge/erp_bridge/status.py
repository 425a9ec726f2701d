"""Sync status as pages, panels, the API and the CLI show it; re-driving failed syncs."""

from __future__ import annotations

import asyncio
from typing import Any

from core import jobs, outbox
from core.errors import NotFound
from core.models import Outbox
from erp_bridge import connection, sales
from erp_bridge.models import Binding, RemoteInvoice

_ACTOR_OF = {"push": "erp_bridge.push_order", "cancel": "erp_bridge.cancel_order"}


async def order_status(order_id: int) -> dict[str, Any]:
    """``{"state": "not_sent" | "in_flight" | "synced" | "failed", ...}`` for the order page."""
    row = await Binding.select().where((Binding.model == sales.ORDER_MODEL) & (Binding.local_id == order_id)
                                       ).order_by(Binding.id).first()
    if row is None:
        return {"state": "not_sent", "order_id": order_id}
    return {"state": row["state"], "order_id": order_id, "binding_id": row["id"], "reference": row["reference"],
            "external_number": row["external_number"], "external_id": row["external_id"],
            "remote_state": row["remote_state"], "invoice_number": row["invoice_number"],
            "is_paid": row["is_paid"], "sync_date": row["sync_date"], "last_error": row["last_error"],
            "operation": row["operation"]}


async def invoices_of_person(person_id: int) -> list[dict[str, Any]]:
    ids = await sales.order_ids(person_id=person_id)
    refs = [h["reference"] for h in (await sales.order_headers(ids)).values() if h["reference"]]
    if not refs:
        return []
    return list(await RemoteInvoice.select(
        RemoteInvoice.external_id, RemoteInvoice.number, RemoteInvoice.order_reference, RemoteInvoice.state,
        RemoteInvoice.currency, RemoteInvoice.total, RemoteInvoice.amount_to_pay, RemoteInvoice.is_paid,
        RemoteInvoice.invoice_date).where(RemoteInvoice.order_reference.is_in(refs)).order_by(
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
        raise NotFound(f"binding {binding_id} not found")
    if row["state"] != "failed":
        return row["state"]
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
