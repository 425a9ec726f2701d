"""Background jobs of crm_reports."""

from __future__ import annotations

from core.jobs import actor


@actor("crm_reports.run_due_schedules", max_retries=2)
async def run_due_schedules() -> None:
    """Send every scheduled report whose time has come (each run logged; a failed one tells its owner)."""
    from crm_reports.schedules import due, run

    for schedule_id in await due():
        await run(schedule_id)
