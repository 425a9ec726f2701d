"""Re-driving an ERP sync behind approvals (core.approvals): an administrator may ask for an approval before a
failed sync is sent again — typically a cancelled order whose cancellation the ERP refused because its document
changed (``operation`` = ``cancel``): re-driving applies the cancel to the ERP's current version.

Asked by the re-drive page and API action before anything changes; once approved, the re-drive runs by itself as
the person who asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.approvals import require
from core.errors import NotFound
from core.hooks import ApprovableAction, hookimpl
from core.i18n import N_, gettext
from core.security import audit
from core.security.access import Access
from erp_bridge.manifest import BINDING

REDRIVE = "erp_bridge.redrive"
FIELDS = {"operation": "text", "model": "text", "reference": "text", "state": "text", "remote_state": "text",
          "attempts": "number", "local_id": "number"}
LABELS = {"operation": N_("Operation"), "model": N_("Record type"), "reference": N_("Reference"),
          "state": N_("State"), "remote_state": N_("State in the ERP"), "attempts": N_("Attempts"),
          "local_id": N_("Record")}


async def values_of(binding_id: int) -> dict[str, Any]:
    from erp_bridge.models import Binding

    row = await Binding.select(*(Binding._meta.get_column_by_name(f) for f in FIELDS)).where(
        Binding.id == binding_id).first()
    if row is None:
        raise NotFound(f"binding {binding_id} not found")
    return dict(row)


async def check_redrive(acc: Access, binding_id: int) -> None:
    """Raise ``ApprovalPending``/``ApprovalRejected`` while re-driving this sync awaits an approval."""
    await require(acc, REDRIVE, BINDING, binding_id, await values_of(binding_id))


async def _redrive_approved(acc: Access, binding_id: int) -> str:
    from erp_bridge import status

    state = await status.redrive(binding_id)
    await audit.record("redrive", model=BINDING, record_id=binding_id, principal=acc.principal)
    return gettext("The ERP sync %(reference)s was sent again (%(state)s)") % {
        "reference": (await values_of(binding_id))["reference"], "state": state}


@hookimpl
def crm_approvable_actions() -> Sequence[ApprovableAction]:
    return [ApprovableAction(REDRIVE, N_("Re-drive an ERP sync"), BINDING, FIELDS, labels=LABELS,
                             choices={"operation": ("push", "cancel"), "state": ("in_flight", "synced", "failed")},
                             owner="", title="reference", url="/erp/failed", perform=_redrive_approved)]
