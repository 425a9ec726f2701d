"""REST resources: bindings (sync status, re-drive), the invoice mirror, reconciliation runs and lines, and the
tax mapping (CRM tax rate → ERP tax; also a settings page)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from core.api import Resource
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.security.access import Access
from erp_bridge.manifest import BINDING, INVOICE, RECONCILIATION, TAX_MAP


async def _read_only(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    raise ValidationError({"body": N_("this resource is written by the ERP bridge only")})


async def _redrive(request: Request, acc: Access, record_id: int) -> Any:
    from core.security import audit
    from erp_bridge import status
    from erp_bridge.approvals import check_redrive
    from erp_bridge.models import Binding

    if not acc.can(BINDING, "update"):
        raise PermissionDenied(N_("you may not re-drive ERP syncs"))
    await acc.get(Binding, BINDING, record_id)
    await check_redrive(acc, record_id)  # an approval rule may hold it (core.approvals)
    state = await status.redrive(record_id)
    await audit.record("redrive", model=BINDING, record_id=record_id, principal=acc.principal)
    return {"id": record_id, "state": state}


async def _validate_tax_map(values: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
    from erp_bridge.taxes import validate_row

    return await validate_row(values, before)


def resources() -> list[Resource]:
    from erp_bridge.models import Binding, ReconciliationLine, ReconciliationRun, RemoteInvoice, TaxMapping

    return [
        Resource(path="/erp/bindings", model=BINDING, table=Binding, summary="ERP sync status per CRM record",
                 fields=("model", "local_id", "reference", "external_id", "external_number", "state", "operation",
                         "sync_date", "remote_state", "invoice_number", "is_paid", "last_error", "attempts"),
                 filters=("state", "model", "local_id", "reference"), sortable=("id", "sync_date"),
                 validate=_read_only, actions={"redrive": _redrive}),
        Resource(path="/erp/invoices", model=INVOICE, table=RemoteInvoice, summary="ERP invoices as last pulled",
                 fields=("external_id", "number", "order_reference", "state", "currency", "untaxed", "tax",
                         "total", "amount_to_pay", "is_paid", "invoice_date", "kind", "reference", "sale_id",
                         "credited_ids", "due_date", "payments", "deleted_at"),
                 filters=("order_reference", "is_paid", "state"), sortable=("id", "invoice_date"),
                 validate=_read_only),
        Resource(path="/erp/reconciliation/runs", model=RECONCILIATION, table=ReconciliationRun,
                 summary="Reconciliation runs with totals per status",
                 fields=("trigger", "started_at", "finished_at", "counts", "error", "stats"),
                 validate=_read_only),
        Resource(path="/erp/reconciliation/lines", model=RECONCILIATION, table=ReconciliationLine,
                 summary="Classified order/invoice pairs",
                 fields=("run", "status", "reference", "order_id", "person_id", "customer", "order_date",
                         "crm_currency", "crm_untaxed", "crm_tax", "crm_total", "erp_currency", "erp_untaxed",
                         "erp_tax", "erp_total", "mismatched", "external_ids", "invoice_ids", "invoice_number",
                         "is_paid", "detail", "difference", "erp_state", "sale_number", "invoice_date", "due_date",
                         "erp_paid", "erp_outstanding", "credit_notes", "documents", "synced_at", "synced_by",
                         "previous_status", "review_note", "reviewed_by", "reviewed_at"),
                 filters=("run", "status", "person_id", "reference"), sortable=("id", "order_date"),
                 validate=_read_only),
        Resource(path="/erp/tax-map", settings=N_("ERP"), model=TAX_MAP, table=TaxMapping,
                 summary=N_("ERP tax mapping: each CRM tax rate (0.13 = 13 %) → the ERP's tax id (empty: no tax, "
                            "0 % only); `crm erp check` verifies it"),
                 labels={"id": "#", "rate": N_("Tax rate"), "erp_tax": N_("ERP tax id"),
                         "erp_tax_name": N_("ERP tax name")},
                 fields=("rate", "erp_tax", "erp_tax_name"), writable=("rate", "erp_tax", "erp_tax_name"),
                 required=("rate",), filters=("rate", "erp_tax"), sortable=("id", "rate"),
                 validate=_validate_tax_map,
                 field_schemas={"rate": {"minimum": 0, "maximum": 1}, "erp_tax": {"pattern": "^[0-9]*$"}}),
    ]
