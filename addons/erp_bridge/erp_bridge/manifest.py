"""erp_bridge: orders and invoices synced with an ERP, exactly once in effect; reconciliation for finance.

This module is the addon's table of contents (cheap to import: nothing heavy).
"""

from __future__ import annotations

from core.addon import Addon, Every, Grant, Menu

BINDING = "erp_bridge.binding"  # sync status of one CRM record in one ERP
INVOICE = "erp_bridge.invoice"  # the ERP's invoices, mirrored
RECONCILIATION = "erp_bridge.reconciliation"  # runs and their classified lines
BACKEND = "erp_bridge.backend"  # connection settings (credentials)
TAX_MAP = "erp_bridge.tax_map"  # CRM tax rate → the ERP's tax (settings page "ERP")

ADDON = Addon(
    name="erp_bridge", version="1.0.0", depends=("crm_contacts", "crm_sales"),
    label="ERP",
    summary="Orders and invoices synced with an ERP (Tryton), exactly once in effect; reconciliation for finance",
    models="erp_bridge.models", migrations="erp_bridge.migrations",
    routes="erp_bridge.views:ROUTES", mount="/erp",
    templates="erp_bridge:templates",
    actors="erp_bridge.actors", hooks=("erp_bridge.hooks", "erp_bridge.approvals", "erp_bridge.portal"),
    hookspecs="erp_bridge.hookspecs",
    schedules=(
        Every(minutes=5, actor="erp_bridge.pull_invoices"),
        Every(hours=24, actor="erp_bridge.reconcile"),
    ),
    # roles are crm_contacts' (finance, sales_manager, sales_rep): one set of roles for the whole suite
    permissions=(
        Grant("finance", RECONCILIATION, ("read", "create", "export", "update")),  # update = mark reviewed
        Grant("finance", BINDING, ("read", "update", "export")),  # update = re-drive a failed sync
        Grant("finance", INVOICE, ("read", "export")),
        Grant("sales_manager", BINDING, ("read",)),
        Grant("sales_manager", INVOICE, ("read",)),
        Grant("sales_rep", BINDING, ("read",)),
        Grant("finance", TAX_MAP, ("read", "create", "update", "delete")),
        Grant("sales_manager", TAX_MAP, ("read",)),
    ),
    menus=(
        Menu("ERP sync", "/erp/failed", model=BINDING, order=60),
        Menu("Reconciliation", "/erp/reconciliation", model=RECONCILIATION, order=61),
    ),
)
