"""erp_bridge's hook implementations: the order listener, panels, API resources and CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from core.hooks import Dataset, Dimension, Measure, Panel, StatusCheck, Widget, hookimpl

if TYPE_CHECKING:
    from core.security.access import Access


@hookimpl(optionalhook=True)
async def crm_sales_order_confirmed(order_id: int) -> None:
    """Inside the confirming transaction: the outbox row commits (or rolls back) with the order."""
    from core import jobs
    from erp_bridge import sync

    await sync.expect_push(order_id)
    await jobs.enqueue("erp_bridge.push_order", dedup_key=f"push-order:{order_id}", order_id=order_id)


@hookimpl(optionalhook=True)
async def crm_sales_order_cancelled(order_id: int) -> None:
    """If crm_sales publishes cancellations, push them at once; otherwise the pull schedule finds them."""
    from core import jobs

    await jobs.enqueue("erp_bridge.cancel_order", dedup_key=f"cancel-order:{order_id}", order_id=order_id)


@hookimpl(optionalhook=True)
async def crm_sales_quote_sent(quote_id: int) -> None:
    """Inside the sending transaction: a quote with a tax rate the ERP has no tax for is refused (422 naming the
    line's ``tax_rate``) before the customer sees it."""
    from erp_bridge import taxes

    await taxes.check_quote(quote_id)


@hookimpl
async def crm_record_panels(access: Access, model: str, record_id: int) -> Sequence[Panel]:
    from crm_contacts.api import PERSON_MODEL
    from crm_sales.api import ORDER_MODEL

    from core.i18n import gettext
    from erp_bridge import status
    from erp_bridge.manifest import BINDING, INVOICE

    if access.principal is None:
        return []
    acc = access
    if model == ORDER_MODEL and acc.can(BINDING):
        info = await status.order_status(record_id)
        # the invoice list needs the invoice right; the binding's own summary (number, paid) does not
        invoices = (await status.invoices_of_order(info["reference"])
                    if info.get("reference") and acc.can(INVOICE) else None)
        return [Panel(key="erp_bridge", title=gettext("ERP"), template="erp_bridge/panel_order.html",
                      context={"s": info, "invoices": invoices, "can_redrive": acc.can(BINDING, "update")}, order=30)]
    if model == PERSON_MODEL and acc.can(INVOICE):
        rows = await status.invoices_of_person(record_id)
        return [Panel(key="erp_bridge", title=gettext("Invoices and payments"),
                      template="erp_bridge/panel_person.html", context={"invoices": rows}, order=40, count=len(rows))]
    return []


@hookimpl
def crm_api_resources() -> Any:
    from erp_bridge.resources import resources

    return resources()


@hookimpl
def crm_cli_commands() -> Any:
    from erp_bridge.cli import erp

    return [erp]


@hookimpl
async def crm_status_checks(probe: bool) -> Sequence[StatusCheck]:
    """The ERP connection: configured (from the database), and reachable when ``probe`` is asked for."""
    from core.i18n import gettext
    from erp_bridge import connection, sync

    label = gettext("ERP connection")
    if not await connection.is_configured():
        return [StatusCheck("erp_bridge", label, False, gettext("not configured"), url="/erp/failed",
                            hint=gettext("the ERP is not set up: confirmed orders wait — run `crm erp configure`"),
                            pages=("/erp/", "/sales/orders"))]
    if not probe:
        return [StatusCheck("erp_bridge", label, True)]
    try:
        facts = await asyncio.wait_for(sync.health(), 5)
    except Exception as exc:
        return [StatusCheck("erp_bridge", label, False, f"{type(exc).__name__}: {exc}"[:300], url="/erp/failed",
                            hint=gettext("the ERP does not answer: check it, then `crm erp check`"))]
    return [StatusCheck("erp_bridge", label, True, f"{facts.get('kind', '')} {facts.get('name', '')}".strip())]


@hookimpl
async def crm_dashboard_widgets(access: Access) -> Sequence[Widget]:
    """For who re-drives syncs or reconciles (finance): the failed syncs, and the last reconciliation's counts."""
    import json

    from core.i18n import gettext
    from erp_bridge.manifest import BINDING, RECONCILIATION
    from erp_bridge.models import Binding, ReconciliationRun
    from erp_bridge.reconcile import LABELS

    out: list[Widget] = []
    if access.principal is None:
        return out
    if access.can(BINDING, "update"):
        failed = Binding.state == "failed"
        rows = await (await access.select(Binding, BINDING, Binding.id, Binding.reference, Binding.operation,
                                          Binding.last_error, where=failed)).order_by(Binding.id, ascending=False)\
            .limit(5)
        out.append(Widget(key="erp_bridge_failed", title=gettext("Failed ERP syncs"), order=15,
                          template="erp_bridge/widget_failed.html",
                          context={"rows": rows, "total": await access.count(Binding, BINDING, where=failed)}))
    if access.can(RECONCILIATION):
        run = await ReconciliationRun.select(ReconciliationRun.id, ReconciliationRun.finished_at,
                                             ReconciliationRun.counts, ReconciliationRun.error).where(
            ReconciliationRun.finished_at.is_not_null()).order_by(ReconciliationRun.id, ascending=False).first()
        counts = json.loads(run["counts"] or "{}") if run and isinstance(run["counts"], str) else (
            run["counts"] if run else {})
        out.append(Widget(key="erp_bridge_reconciliation", title=gettext("Last reconciliation"), order=16,
                          template="erp_bridge/widget_reconciliation.html",
                          context={"run": run, "counts": [(LABELS.get(k, k), n) for k, n in counts.items() if n]}))
    return out


@hookimpl
def crm_datasets() -> Sequence[Dataset]:
    """What finance reports on: the sync state of orders in the ERP, and the ERP's invoices paid and unpaid."""
    from core.i18n import gettext
    from erp_bridge.manifest import BINDING, INVOICE
    from erp_bridge.models import Binding, RemoteInvoice

    return [Dataset(key="erp_bridge.bindings", label=gettext("Order sync"), model=BINDING, table=Binding,
                    dimensions=(Dimension("state", gettext("Status"), "state"),
                                Dimension("is_paid", gettext("Paid"), "is_paid"),
                                Dimension("sync_date", gettext("Synced at"), "sync_date")),
                    measures=(Measure("count", gettext("Orders"), "count"),)),
            Dataset(key="erp_bridge.invoices", label=gettext("Invoices"), model=INVOICE, table=RemoteInvoice,
                    dimensions=(Dimension("state", gettext("State"), "state"),
                                Dimension("is_paid", gettext("Paid"), "is_paid"),
                                Dimension("currency", gettext("Currency"), "currency"),
                                Dimension("invoice_date", gettext("Invoice date"), "invoice_date")),
                    measures=(Measure("count", gettext("Invoices"), "count"),
                              Measure("total", gettext("Total"), "sum", "total"),
                              Measure("amount_to_pay", gettext("To pay"), "sum", "amount_to_pay")))]
