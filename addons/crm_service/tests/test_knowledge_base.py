"""Knowledge base: Markdown rendered safe, search finding Chinese words mid-sentence (PostgreSQL full-text and
the SQLite equivalent), internal articles kept from the portal, suggestions on a ticket, the pages and the API."""

from __future__ import annotations

from typing import Any

from service_helpers import build_desk

from core.testing import csrf_of, login_client


async def test_search_render_suggest_and_pages(crm_client: Any) -> None:
    from crm_service import kb, tickets

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    boss = await desk.acc("boss")
    refund = await kb.save_article(boss, {"title": "退换货政策", "language": "zh_CN", "is_public": True,
                                          "body": "收到商品七天内可以申请退货退款，请保留包装。"})
    internal = await kb.save_article(boss, {"title": "内部：退款审批流程", "language": "zh_CN",
                                            "body": "超过五千元的退款需要主管审批。"})
    printer = await kb.save_article(boss, {"title": "Printer troubleshooting", "language": "en", "is_public": True,
                                           "body": "# Paper jam\nOpen the tray <script>alert(1)</script> and "
                                                   "[read more](javascript:alert(2))."})
    agent = await desk.acc("agent1")
    # "退货" sits in the middle of a sentence with no spaces around it
    assert [a["id"] for a in await kb.search(agent, "退货")] == [refund]
    assert {a["id"] for a in await kb.search(agent, "退款")} == {refund, internal}
    assert [a["id"] for a in await kb.search(agent, "paper JAM")] == [printer]
    assert await kb.search(agent, "退货 打印机") == []  # every word required
    assert await kb.search(agent, "%") == [] and await kb.search(agent, "   ") == []
    assert [a["id"] for a in await kb.public_search("退款")] == [refund]  # the internal one is not public

    html = kb.render("# Paper jam\n<script>alert(1)</script>\n\n[x](javascript:alert(2)) **ok**")
    assert "<h1>Paper jam</h1>" in html and "<strong>ok</strong>" in html
    assert "<script" not in html and "&lt;script&gt;" in html and 'href="javascript' not in html

    ticket_id = await tickets.create_ticket(agent, {"subject": "我想退货", "description": "包装还在",
                                                    "team": desk.support})
    assert refund in [a["id"] for a in await kb.suggest(agent, "我想退货", "包装还在")]

    await login_client(client, "agent1")
    page = await client.get(f"/service/tickets/{ticket_id}")
    assert "退换货政策" in page.text  # suggested on the ticket
    found = await client.get("/service/articles", params={"q": "退货"})
    assert found.status_code == 200 and "退换货政策" in found.text and "Printer" not in found.text
    shown = await client.get(f"/service/articles/{printer}")
    assert shown.status_code == 200 and "<h1>Paper jam</h1>" in shown.text and "<script>alert" not in shown.text
    # an agent may read but not write articles
    denied = await client.post("/service/articles", data={"title": "x", "csrf_token": csrf_of(page.text)})
    assert denied.status_code == 403

    # the API keeps the search index in step with the text
    await login_client(client, "boss")
    token = csrf_of((await client.get("/service/articles")).text)
    made = await client.post("/api/service/articles", headers={"X-CSRF-Token": token},
                             json={"title": "发票说明", "body": "电子发票会在三个工作日内开具"})
    assert made.status_code == 201, made.text
    assert [a["id"] for a in await kb.search(boss, "电子发票")] == [made.json()["id"]]
    bad = await client.post("/api/service/articles", json={"title": "x", "language": "fr"},
                            headers={"X-CSRF-Token": token})
    assert bad.status_code == 422 and "language" in bad.json()["error"]["fields"]

    # canned replies: only the known placeholders, filled in for the ticket
    refused = await client.post("/api/service/canned-replies", headers={"X-CSRF-Token": token},
                                json={"name": "bad", "body": "Hi {customer.__class__}"})
    assert refused.status_code == 422 and "body" in refused.json()["error"]["fields"]
    canned = await client.post("/api/service/canned-replies", headers={"X-CSRF-Token": token},
                               json={"name": "Returns", "body": "{customer_name}您好，关于{ticket_ref}「{subject}」，"
                                                                 "请参考退换货政策。{agent_name}"})
    assert canned.status_code == 201, canned.text
    page = await client.get(f"/service/tickets/{ticket_id}")
    sent = await client.post(f"/service/tickets/{ticket_id}/messages", data={
        "body": "", "canned": str(canned.json()["id"]), "kind": "reply", "csrf_token": csrf_of(page.text)})
    assert sent.status_code == 303
    from crm_service.models import Message

    last = await Message.select(Message.body).where(Message.ticket == ticket_id).order_by(Message.id,
                                                                                          ascending=False).first()
    assert last["body"] == f"您好，关于{tickets.reference(ticket_id)}「我想退货」，请参考退换货政策。Boss"


async def test_search_reads_the_newest_window_then_all(crm_client: Any, monkeypatch: Any) -> None:
    """The newest matches come from the window of the newest articles when it holds a page, else from all the
    matches (a window of 3 patched in: a page of 2 that the window holds, then one it does not)."""
    from crm_service import kb

    await crm_client("crm_service")
    desk = await build_desk(None)
    boss = await desk.acc("boss")
    monkeypatch.setattr(kb, "WINDOW", 3)
    old = await kb.save_article(boss, {"title": "蓝牙耳机配对", "body": "长按电源键"})
    ids = [await kb.save_article(boss, {"title": f"保修说明 {i}", "body": "保修一年"}) for i in range(4)]
    assert [a["id"] for a in await kb.search(boss, "保修", limit=2)] == [ids[3], ids[2]]
    assert [a["id"] for a in await kb.search(boss, "保修", limit=10)] == ids[::-1]
    assert [a["id"] for a in await kb.search(boss, "蓝牙")] == [old]  # outside the window of 3
    assert await kb.search(boss, "蓝牙 保修") == []
