"""Escalation across channels, the service report PDF, and what crm_service adds to other pages: the person's 360°
panel and timeline (through the viewer's rights), contact merge re-pointing tickets, the reporting dataset."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from service_helpers import build_desk

from core import datasets, hooks, records
from core.notifications import recent
from core.security.models import AuditLog
from core.testing import login_client


async def test_escalation_report_panel_merge_dataset(crm_client: Any, tmp_path: Path) -> None:
    from crm_service import tickets
    from crm_service.models import Ticket

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    base = {"team": desk.support, "customer_name": "陈静", "customer_email": "chen@example.cn"}
    first = await tickets.create_ticket(agent, {**base, "subject": "发票开错了", "channel": "email"})
    other_topic = await tickets.create_ticket(agent, {**base, "subject": "密码忘了", "channel": "portal"})
    second = await tickets.create_ticket(agent, {**base, "subject": "发票抬头错误", "channel": "phone"})
    rows = {r["id"]: r for r in await Ticket.select()}
    assert not rows[second]["escalation_of"]  # two channels: not yet
    third = await tickets.create_ticket(agent, {**base, "subject": "还是发票的事", "channel": "portal"})
    rows = {r["id"]: r for r in await Ticket.select()}
    assert rows[third]["priority"] == "high" and rows[third]["escalation_of"] == first
    assert rows[second]["escalation_of"] == first and not rows[other_topic]["escalation_of"]
    assert "3 tickets on 3 channels" in rows[third]["escalation_reason"]
    assert [n for n in await recent(desk.ids["lead"]) if "Escalated" in n["title"] or "升级" in n["title"]]
    assert await AuditLog.exists().where((AuditLog.action == "escalate") & (AuditLog.record_id == str(third)))

    # a high-priority complaint copies the team leader at once
    complaint = await tickets.create_ticket(agent, {"subject": "服务态度差", "team": desk.support,
                                                    "ticket_type": "complaint", "priority": "urgent"})
    assert len([n for n in await recent(desk.ids["lead"]) if str(complaint) in n["url"]]) == 1

    # the service report: a PDF with the public conversation only, in Chinese with a CJK font
    await tickets.add_message(agent, third, "reply", "已重新开具发票")
    await tickets.add_message(agent, third, "note", "财务说是系统问题")
    await login_client(client, "agent1")
    pdf = await client.get(f"/service/tickets/{third}/report.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "已重新开具发票" in text and "财务说是系统问题" not in text and tickets.reference(third) in text
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert "WenQuanYi" in fonts or "Noto" in fonts  # Chinese is drawn, not just extractable
    assert (await client.get(f"/service/tickets/{third + 100}/report.pdf")).status_code == 404

    # 360°: the person's panel and timeline show the tickets to an agent, nothing to Billing's agent... who may
    # read every contact but not Support's tickets
    person = rows[first]["person"]
    mine = await records.extras(agent, "crm_contacts.person", person, timeline=True)
    panel = next(p for p in mine.panels if p.key == "crm_service_tickets")
    assert panel.count == 4 and {e.url for e in mine.timeline if e.source == "crm_service"} >= {
        f"/service/tickets/{first}"}
    outsider = await records.extras(await desk.acc("agent3"), "crm_contacts.person", person, timeline=True)
    assert next(p for p in outsider.panels if p.key == "crm_service_tickets").count == 0
    assert not [e for e in outsider.timeline if e.source == "crm_service"]

    # merging the customer into another person moves the tickets
    from crm_contacts import api as contacts

    survivor, _ = await contacts.find_or_create_person(name="陈静（新）", email="chen.new@example.cn")
    await hooks.call("crm_merge_records", model="crm_contacts.person", survivor_id=survivor.id, loser_ids=[person])
    assert await Ticket.count().where(Ticket.person == survivor.id) == 4

    # the reporting dataset counts through the access layer: Billing's agent sees none of Support's tickets
    boss = await desk.acc("boss")
    by_state = await datasets.aggregate(boss, "crm_service.tickets", ["state"], ["count"])
    assert sum(r["count"] for r in by_state) == 5
    await Ticket.update({Ticket.csat: 4}).where(Ticket.id == first)
    await Ticket.update({Ticket.csat: 2}).where(Ticket.id == second)
    rated = await datasets.aggregate(boss, "crm_service.tickets", [], ["csat"])
    assert float(rated[0]["csat"]) == 3.0
    assert await datasets.aggregate(await desk.acc("agent3"), "crm_service.tickets", ["state"], ["count"]) == []
