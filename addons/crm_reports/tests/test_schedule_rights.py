"""A scheduled report e-mails each recipient their own copy, computed as them (as a shared report's page is): a
sales manager's schedule to the reps' role sends a rep the rep's own deals, never the team's; a recipient the
report is not shared with gets nothing and the run says so."""

from __future__ import annotations

import csv
import io

from aiosmtpd.controller import Controller
from reports_helpers import DEALS, Org

from core.testing import MailInbox, free_port


async def test_each_recipient_gets_the_report_as_they_may_see_it(org: Org) -> None:
    from crm_reports import reports, schedules
    from crm_reports.models import Schedule

    from core.runtime import current

    manager = await org.acc("manager")
    report_id = await reports.save(manager, {"name": "Deals", "dataset": DEALS, "chart": "table",
                                             "spec": {"dimensions": ["owner"], "measures": ["count"]},
                                             "shared_roles": ["sales_rep"]})
    schedule_id = await schedules.save(manager, report_id, {"cron": "0 8 * * 1", "format": "csv",
                                                            "recipients": [org.ids["manager"], org.ids["rep1"],
                                                                           org.ids["fin"]]})
    assert await Schedule.exists().where(Schedule.id == schedule_id)
    inbox, port = MailInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runtime = current()
        runtime.settings = runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=port, smtp_from="crm@example.com")
        log = await schedules.run(schedule_id)
    finally:
        controller.stop()

    def deals_in(address: str) -> int:
        msg = next(m for m in inbox.messages if m["To"] == address)
        part = next(p for p in msg.walk() if p.get_filename())
        rows = list(csv.reader(io.StringIO(part.get_payload(decode=True).decode("utf-8-sig"))))[1:]
        return sum(int(r[-1]) for r in rows)

    # fin (finance) may read every deal but the report is not shared with finance: nothing for fin
    assert log["ok"] and log["recipients"] == 2 and "1 recipient" in log["detail"], log
    assert sorted(m["To"] for m in inbox.messages) == ["manager@example.com", "rep1@example.com"]
    mine = sum(1 for d in org.deals if d["owner"] == org.ids["rep1"])
    team = sum(1 for d in org.deals if d["owner"] in {org.ids[k] for k in ("rep1", "rep2", "manager")})
    assert deals_in("rep1@example.com") == mine < deals_in("manager@example.com") == team
