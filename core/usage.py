"""The kernel's own dataset: usage, counted from the audit log (who did what to which model, when), for the
administrators' dashboard. Registered like an addon's hooks (``runtime.KERNEL_HOOKS``); read through the access
layer like any dataset, so only roles that may read the audit log see it."""

from __future__ import annotations

from collections.abc import Sequence

from core.hooks import Dataset, Dimension, Measure, hookimpl
from core.i18n import gettext

AUDIT_LOG = "core.audit_log"


@hookimpl
def crm_datasets() -> Sequence[Dataset]:
    from core.security.models import AuditLog

    return [Dataset(key="core.usage", label=gettext("Usage (audit log)"), model=AUDIT_LOG, table=AuditLog,
                    dimensions=(Dimension("action", gettext("Action"), "action"),
                                Dimension("model", gettext("Model"), "model"),
                                Dimension("user", gettext("User"), "user_login"),
                                Dimension("at", gettext("When"), "at")),
                    measures=(Measure("count", gettext("Entries"), "count"),))]
