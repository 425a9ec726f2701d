"""crm_reports: the report engine. It names no other addon: everything is built from the kernel's datasets
(``crm_datasets``), read through the access layer as the viewer. This module is the table of contents."""

from __future__ import annotations

from core.addon import Action, Addon, Every, Grant, Menu

REPORT = "crm_reports.report"
DASHBOARD = "crm_reports.dashboard"
SCHEDULE = "crm_reports.schedule"
RUN = "crm_reports.schedule_run"

#: every staff role may build reports; what a report shows is what its viewer may read of the dataset
STAFF = ("sales_rep", "sales_manager", "service_agent", "marketing", "finance")
_MINE: tuple[Action, ...] = ("create", "read", "update", "delete", "export")


def _grants() -> tuple[Grant, ...]:
    out: list[Grant] = []
    for role in STAFF:
        for model in (REPORT, DASHBOARD):
            # reading any definition is harmless (a shared report runs as its viewer); the pages list only the
            # user's own and those shared with them; writing is the owner's
            out.append(Grant(role, model, ("read", "export"), scope="all"))
            out.append(Grant(role, model, _MINE, scope="own"))
        out.append(Grant(role, SCHEDULE, _MINE, scope="own"))
        out.append(Grant(role, RUN, ("read",), scope="all"))
    return tuple(out)


ADDON = Addon(
    name="crm_reports", version="1.0.0", depends=("crm_contacts",),
    label="Reports",
    summary="Report builder, charts, dashboards per role, exports and scheduled reports over the installed datasets",
    models="crm_reports.models", migrations="crm_reports.migrations",
    routes="crm_reports.views:ROUTES", mount="/reports",
    templates="crm_reports:templates", static="crm_reports:static",
    actors="crm_reports.actors", hooks=("crm_reports.hooks",),
    on_upgrade="crm_reports.dashboards:upgrade",
    schedules=(Every(minutes=1, actor="crm_reports.run_due_schedules"),
               Every(hours=1, actor="crm_reports.check_trends")),
    permissions=_grants(),
    menus=(
        Menu("Dashboards", "/reports/", model=DASHBOARD, order=70),
        Menu("Reports", "/reports/reports", model=REPORT, order=71),
        Menu("Scheduled reports", "/reports/schedules", model=SCHEDULE, order=72),
    ),
)
