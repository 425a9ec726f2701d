"""The customer portal: invitation, password, sign-in; each customer sees only their own tickets (a matrix over
two customers and every portal page), never an internal note, never the back office; reply, open, rate (CSAT)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from service_helpers import build_desk

from core.testing import csrf_of, login_client

BASE = "/service/public/portal"
PASSWORD = "Harbour-Lantern-93!"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF field"
    return found.group(1)


async def _portal_client(app_client: httpx.AsyncClient, link: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=app_client._transport, base_url="http://testserver", follow_redirects=False)
    assert (await client.get(link)).status_code == 200
    done = await client.post(link, data={"password": PASSWORD})
    assert done.status_code == 303 and done.headers["location"] == f"{BASE}/"
    return client


async def test_portal_isolation_reply_and_rating(crm_client: Any) -> None:
    from crm_service import portal, tickets
    from crm_service.models import Attachment, Message, Ticket

    staff = await crm_client("crm_service")
    desk = await build_desk(None)
    agent = await desk.acc("agent1")
    mine = await tickets.create_ticket(agent, {"subject": "屏幕碎了", "team": desk.support,
                                               "customer_name": "周一", "customer_email": "zhou@example.cn"})
    theirs = await tickets.create_ticket(agent, {"subject": "Their secret order", "team": desk.support,
                                                 "customer_name": "Wu Er", "customer_email": "wu@example.cn"})
    await tickets.add_message(agent, mine, "reply", "请寄回给我们")
    await tickets.add_message(agent, mine, "note", "内部备注：客户去年也换过")
    zhou = (await Ticket.select(Ticket.person).where(Ticket.id == mine).first())["person"]
    wu = (await Ticket.select(Ticket.person).where(Ticket.id == theirs).first())["person"]

    anonymous = await staff.get(f"{BASE}/")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == f"{BASE}/login"
    link = await portal.invite(zhou, "zhou@example.cn")
    other_link = await portal.invite(wu, "wu@example.cn")
    assert (await staff.get(f"{BASE}/set-password/not-a-token")).status_code == 404
    customer = await _portal_client(staff, link)
    other = await _portal_client(staff, other_link)
    assert (await customer.get(link)).status_code == 404  # the link is used up

    home = await customer.get(f"{BASE}/")
    assert home.status_code == 200 and "屏幕碎了" in home.text and "Their secret order" not in home.text
    assert f'href="{BASE}/tickets/{mine}"' in home.text and f"/tickets/{theirs}\"" not in home.text
    page = await customer.get(f"{BASE}/tickets/{mine}")
    assert "请寄回给我们" in page.text and "内部备注" not in page.text
    # the matrix: every portal page and action on the other customer's ticket is a 404 for each of them
    for client, foreign in ((customer, theirs), (other, mine)):
        token = _csrf((await client.get(f"{BASE}/")).text)
        assert (await client.get(f"{BASE}/tickets/{foreign}")).status_code == 404
        for action, data in (("reply", {"body": "hi"}), ("rate", {"csat": "5"})):
            response = await client.post(f"{BASE}/tickets/{foreign}/{action}", data={**data, "csrf_token": token})
            assert response.status_code == 404, (action, response.status_code)
    # a portal customer never reaches the back office, nor its API
    assert (await customer.get("/service/")).status_code in (303, 401)
    assert (await customer.get("/api/service/tickets")).status_code == 401

    token = _csrf(page.text)
    # a POST without the session's CSRF token is refused
    assert (await customer.post(f"{BASE}/tickets/{mine}/reply", data={"body": "x"})).status_code == 403
    replied = await customer.post(f"{BASE}/tickets/{mine}/reply", data={"body": "已经寄出", "csrf_token": token})
    assert replied.status_code == 303
    assert await Message.exists().where((Message.ticket == mine) & (Message.body == "已经寄出")
                                        & (Message.kind == "inbound"))
    early = await customer.post(f"{BASE}/tickets/{mine}/rate", data={"csat": "5", "csrf_token": token})
    assert early.status_code == 422  # not resolved yet
    await tickets.change_state(agent, mine, "resolved")
    bad = await customer.post(f"{BASE}/tickets/{mine}/rate", data={"csat": "9", "csrf_token": token})
    assert bad.status_code == 422
    rated = await customer.post(f"{BASE}/tickets/{mine}/rate", data={"csat": "4", "comment": "快",
                                                                      "csrf_token": token})
    assert rated.status_code == 303
    assert (await Ticket.select(Ticket.csat).where(Ticket.id == mine).first())["csat"] == 4

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    opened = await customer.post(f"{BASE}/tickets", data={"subject": "换货申请", "ticket_type": "return",
                                                          "csrf_token": token},
                                 files={"photo": ("破损.png", png, "image/png")})
    assert opened.status_code == 303
    new = await Ticket.select().where(Ticket.subject == "换货申请").first()
    assert new["person"] == zhou and new["channel"] == "portal" and new["ticket_type"] == "return"
    photo = await Attachment.select().where(Attachment.ticket == new["id"]).first()
    assert photo["filename"] == "破损.png" and photo["size"] == len(png)
    assert (await customer.get(f"{BASE}/attachments/{photo['id']}")).content == png
    assert (await other.get(f"{BASE}/attachments/{photo['id']}")).status_code == 404
    # an executable, or a file whose bytes are not what its name says, is refused and nothing is written
    for name, data in (("setup.exe", b"MZ\x90"), ("photo.png", b"MZ\x90 not a png")):
        refused = await customer.post(f"{BASE}/tickets", data={"subject": f"refused {name}", "csrf_token": token},
                                      files={"photo": (name, data, "application/octet-stream")})
        assert refused.status_code == 422 and name in refused.text
        assert not await Ticket.exists().where(Ticket.subject == f"refused {name}")

    # the agent sees the rating; sign-out ends the portal session on the server
    await login_client(staff, "agent1")
    assert "4 / 5" in (await staff.get(f"/service/tickets/{mine}")).text
    out = await customer.post(f"{BASE}/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await customer.get(f"{BASE}/")).status_code == 303
    wrong = await other.post(f"{BASE}/login", data={"email": "zhou@example.cn", "password": "nope"})
    assert wrong.status_code == 403  # no pre-login CSRF cookie
    login_page = await other.get(f"{BASE}/login")
    wrong = await other.post(f"{BASE}/login", data={"email": "zhou@example.cn", "password": "nope",
                                                     "csrf_token": csrf_of(login_page.text)})
    assert wrong.status_code == 401
    # a forgotten password: a new link for a known address, the same answer for an unknown one
    for address in ("zhou@example.cn", "nobody@example.cn"):
        page = await other.get(f"{BASE}/login")
        sent = await other.post(f"{BASE}/reset", data={"email": address, "csrf_token": csrf_of(page.text)})
        assert sent.status_code == 200 and "link to set a new password" in sent.text
    from core.models import Outbox

    jobs_queued = await Outbox.select(Outbox.payload).where(Outbox.actor == "crm_service.send_portal_invite")
    assert [str(j["payload"]).count("zhou@example.cn") for j in jobs_queued] == [1]
    await customer.aclose()
    await other.aclose()


async def test_portal_sign_in_is_throttled_per_account_and_per_address(crm_client: Any) -> None:
    """The back office's throttle (5 failures in 15 minutes in tests): a sixth try on the same account from
    anywhere, or from the same address on any account, is refused with a clear message, even with the right
    password; a success before the limit clears the account's count."""
    from crm_contacts.api import find_or_create_person
    from crm_service import portal

    from core.security.models import AuditLog

    staff = await crm_client("crm_service")
    app = staff._transport.app  # type: ignore[attr-defined]

    def from_ip(ip: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
                                 base_url="http://testserver", follow_redirects=False)

    accounts = {}
    for email in ("li@example.cn", "ma@example.cn"):
        ref, _ = await find_or_create_person(name=email.split("@")[0], email=email)
        accounts[email] = ref.id
        await (await _portal_client(staff, await portal.invite(ref.id, email))).aclose()

    async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
        page = await client.get(f"{BASE}/login")
        return await client.post(f"{BASE}/login", data={"email": email, "password": password,
                                                         "csrf_token": csrf_of(page.text)})

    # per account: five wrong passwords from five addresses, then the right one from a sixth is refused
    for n in range(5):
        async with from_ip(f"10.0.0.{n + 1}") as client:
            assert (await sign_in(client, "li@example.cn", "wrong")).status_code == 401
    async with from_ip("10.0.0.6") as client:
        refused = await sign_in(client, "LI@example.cn ", PASSWORD)
        assert refused.status_code == 429 and "data-throttled" in refused.text
        assert "Too many failed sign-ins. Try again in 15 minutes." in refused.text
        assert "crm_portal" not in refused.cookies
        # the other account from that address is not affected
        assert (await sign_in(client, "ma@example.cn", PASSWORD)).status_code == 303
    assert await AuditLog.exists().where((AuditLog.action == "login_throttled") & (AuditLog.user_login ==
                                                                                    "li@example.cn"))
    # per address: five failures on unknown accounts, then a real account from the same address is refused
    async with from_ip("10.0.1.1") as client:
        for n in range(5):
            assert (await sign_in(client, f"nobody{n}@example.cn", "wrong")).status_code == 401
        zh = await client.post(f"{BASE}/login", headers={"accept-language": "zh-CN"}, data={
            "email": "ma@example.cn", "password": PASSWORD,
            "csrf_token": csrf_of((await client.get(f"{BASE}/login")).text)})
        assert zh.status_code == 429 and "登录失败次数过多" in zh.text
    # below the limit, a success clears the account's failures (3 + 3 would pass the limit otherwise)
    async with from_ip("10.0.2.1") as client:
        for _ in range(3):
            assert (await sign_in(client, "ma@example.cn", "wrong")).status_code == 401
        assert (await sign_in(client, "ma@example.cn", PASSWORD)).status_code == 303
    async with from_ip("10.0.2.2") as client:
        for _ in range(3):
            assert (await sign_in(client, "ma@example.cn", "wrong")).status_code == 401
        assert (await sign_in(client, "ma@example.cn", PASSWORD)).status_code == 303
