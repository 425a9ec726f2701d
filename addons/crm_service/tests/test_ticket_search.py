"""Ticket search by words: a two-character Chinese word in the middle of a subject or description is found (and
a substring across word boundaries is not), on the agent list, the JSON API and the global search; an edit
re-segments the words; a reference finds its ticket."""

from __future__ import annotations

from typing import Any

from service_helpers import build_desk

from core.security.models import AuditLog
from core.testing import login_client


async def test_search_finds_chinese_words_mid_sentence(crm_client: Any) -> None:
    from crm_service import tickets
    from crm_service.models import Ticket

    client = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    boss = await desk.acc("boss")
    refund = await tickets.create_ticket(agent, {"subject": "我想申请退货退款", "team": desk.support})
    body = await tickets.create_ticket(agent, {"subject": "订单问题", "description": "收到的屏幕碎了，要求更换",
                                               "team": desk.support})
    other = await tickets.create_ticket(agent, {"subject": "发票抬头错误", "team": desk.support})
    hidden = await tickets.create_ticket(boss, {"subject": "退货申请", "team": desk.billing})
    row = await Ticket.select(Ticket.search_text).where(Ticket.id == refund).first()
    assert " 退货 " in row["search_text"] and " 退款 " in row["search_text"]
    created = await AuditLog.select(AuditLog.changes).where(
        (AuditLog.action == "create") & (AuditLog.record_id == str(refund))).first()
    assert "search_text" not in str(created["changes"])  # derived, not a change anyone made

    await login_client(client, "agent1")

    async def listed(q: str) -> set[int]:
        page = await client.get("/service/", params={"q": q})
        assert page.status_code == 200
        return {i for i in (refund, body, other, hidden) if f"SR-{i:06d}" in page.text}

    assert await listed("退货") == {refund}  # team scope keeps Billing's ticket out
    assert await listed("屏幕") == {body}  # found in the description
    assert await listed("货退") == set()  # a substring across two words is not a word
    assert await listed(f"SR-{other:06d}") == {other}
    assert await listed("？！") == set()

    # an edit re-segments: the old word no longer finds it, the new one does
    await tickets.update_ticket(agent, other, {"subject": "发票地址修改"})
    assert await listed("抬头") == set() and await listed("地址") == {other}

    api = await client.get("/api/service/tickets", params={"q": "退款"})
    assert api.status_code == 200, api.text
    assert [r["id"] for r in api.json()["items"]] == [refund]
    assert "search_text" not in api.json()["items"][0]
    too_long = await client.get("/api/service/tickets", params={"q": "退" * 201})
    assert too_long.status_code == 422 and "q" in too_long.json()["error"]["fields"]
    doc = (await client.get("/api/openapi.json")).json()
    assert "q" in [p["name"] for p in doc["paths"]["/api/service/tickets"]["get"]["parameters"]]

    found = await client.get("/api/search", params={"q": "屏幕"})
    assert found.status_code == 200
    assert f"SR-{body:06d}" in found.text and f"SR-{refund:06d}" not in found.text


async def test_a_word_search_reads_a_window_of_the_newest_matches_then_offers_older(
        crm_client: Any, monkeypatch: Any) -> None:
    """A common word under a filter few of its tickets pass never walks the whole table for one page: the newest
    matches are read (a window), and when they are spent the page offers to search the older ones."""
    import re


    client, desk, oldest, done = await _open_then_two_resolved(crm_client, monkeypatch)
    page = (await client.get("/service/", params={"q": "耳机"})).text  # active tickets: the window holds none
    assert f"SR-{oldest:06d}" not in page and "data-searched-part" in page
    older = re.search(r'rel="next" href="([^"]+)"', page)
    assert older and f"after={min(done)}" in older.group(1)
    page = (await client.get(older.group(1).replace("&amp;", "&"))).text
    assert f"SR-{oldest:06d}" in page and "data-searched-part" not in page


async def test_the_api_search_reads_the_same_window_and_says_where_older_matches_start(
        crm_client: Any, monkeypatch: Any) -> None:
    """``GET /api/service/tickets?q=`` reads the agent list's window (the newest matches, then filters and record
    rules over those): a window's last page gives ``q_older``, and ``q_before`` searches the next window."""
    from crm_service import tickets

    client, desk, oldest, done = await _open_then_two_resolved(crm_client, monkeypatch)

    async def page(**params: Any) -> dict[str, Any]:
        got = await client.get("/api/service/tickets", params={"q": "耳机", "sort": "-id", **params})
        assert got.status_code == 200, got.text
        return dict(got.json())

    first = await page(state="new")  # the window holds the two resolved ones: nothing to show, older remain
    assert first == {"items": [], "next": None, "q_older": min(done)}
    older = await page(state="new", q_before=first["q_older"])
    assert [r["id"] for r in older["items"]] == [oldest] and older["q_older"] is None

    # q_older only on a window's last page: the pages inside it go on with ``next``
    one = await page(limit=1)
    assert [r["id"] for r in one["items"]] == [max(done)] and one["next"] and one["q_older"] is None
    two = await page(limit=1, after=one["next"])
    assert [r["id"] for r in two["items"]] == [min(done)] and two["next"] is None and two["q_older"] == min(done)
    assert [r["id"] for r in (await page(q_before=two["q_older"]))["items"]] == [oldest]

    # another team's newer match fills the window: it is not shown, and it does not hide what comes after it
    boss = await desk.acc("boss")
    hidden = await tickets.create_ticket(boss, {"subject": "耳机坏了", "team": desk.billing})
    shown = await page()
    assert [r["id"] for r in shown["items"]] == [max(done)] and shown["q_older"] == max(done)
    assert hidden not in [r["id"] for r in (await page(q_before=shown["q_older"]))["items"]]

    bad = await client.get("/api/service/tickets", params={"q": "耳机", "q_before": "x"})
    assert bad.status_code == 422 and "q_before" in bad.json()["error"]["fields"]
    doc = (await client.get("/api/openapi.json")).json()["paths"]["/api/service/tickets"]["get"]
    assert "q_before" in [p["name"] for p in doc["parameters"]]


async def _open_then_two_resolved(crm_client: Any, monkeypatch: Any) -> tuple[Any, Any, int, list[int]]:
    """A search window of 2 (patched before the app boots: the API's resources read it then) holding two resolved
    tickets newer than the one open match; agent1 signed in."""
    from crm_service import ticket_search, tickets
    from crm_service.models import Ticket

    monkeypatch.setattr(ticket_search, "WINDOW", 2)
    client = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    oldest = await tickets.create_ticket(agent, {"subject": "耳机没有声音", "team": desk.support})
    done = [await tickets.create_ticket(agent, {"subject": f"耳机退货 {i}", "team": desk.support}) for i in range(2)]
    await Ticket.update({Ticket.state: "resolved"}).where(Ticket.id.is_in(done))
    await login_client(client, "agent1")
    return client, desk, oldest, done
