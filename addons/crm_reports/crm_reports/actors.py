"""Background jobs of crm_reports."""

from __future__ import annotations

from core.jobs import actor


@actor("crm_reports.run_due_schedules", max_retries=2)
async def run_due_schedules() -> None:
    """Send every scheduled report whose time has come (each run logged; a failed one tells its owner)."""
    from crm_reports.schedules import due, run

    for schedule_id in await due():
        await run(schedule_id)


@actor("crm_reports.check_trends", max_retries=2)
async def check_trends() -> None:
    """Warn owners of reports asking for it whose figure fell N periods in a row (once per period)."""
    from crm_reports.warnings import check

    await check()
