"""The demo data installs: a team with its leader and agent, SLA policies, tickets in every state with their
history, articles in Chinese and English that the search finds."""

from __future__ import annotations

from typing import Any

import pytest

from core import data, lifecycle
from core.demo import DEMO_PASSWORD, DemoUser, demo_teams, ensure_teams
from core.discovery import discover
from core.security.models import User
from core.security.users import create_user


# the CSV loader is the kernel's, tested on both backends there: the demo's content is checked once
@pytest.mark.parametrize("crm_db_url", ["sqlite"], indirect=True)
async def test_demo_desk(crm_boot: Any) -> None:
    from crm_service import kb
    from crm_service.models import Article, PortalAccount, StateChange, Ticket

    from core.security import access, principal
    from core.security.passwords import verify

    await crm_boot()  # kernel only: demo users and teams first, as `crm demo` does
    users = [DemoUser(role, role) for role in ("sales_rep", "sales_manager", "service_agent", "service_manager")]
    for du in users:
        user_id = await create_user(du.login, du.role.title(), DEMO_PASSWORD, roles=[du.role])
        await data.bind("core", f"user_{du.role}", User, user_id)
    await ensure_teams(demo_teams(users))
    await lifecycle.install(["crm_service"], discover(), demo=True)
    await crm_boot()
    states = {r["state"] for r in await Ticket.select(Ticket.state)}
    assert states == {"new", "open", "pending_customer", "pending_third_party", "resolved", "closed"}
    assert await StateChange.count() > await Ticket.count()
    assert {r["language"] for r in await Article.select(Article.language)} == {"zh_CN", "en"}
    agent = await User.select(User.id).where(User.login == "service_agent").first()
    acc = access.Access(await principal.load(agent["id"], implied=access.policy().implied))
    assert await acc.count(Ticket, "crm_service.ticket") == await Ticket.count()  # the agent's team's tickets
    assert [a["title"] for a in await kb.search(acc, "退款")] == ["退换货政策"]
    # the demo customer signs in to the portal with the demo password
    account = await PortalAccount.select().where(PortalAccount.id > 0).first()
    assert verify(account["password_hash"], DEMO_PASSWORD)
    # a few tickets to open, one resolved (to rate) and one waiting for the customer (to reply to)
    theirs = {r["state"] for r in await Ticket.select(Ticket.state).where(Ticket.person == account["person"])}
    assert {"resolved", "pending_customer"} <= theirs and len(theirs) >= 3
    # `crm demo` prints the portal sign-in next to the demo users
    from core.demo import logins

    (portal_login,) = await logins()
    assert portal_login.url.endswith("/service/public/portal/login") and portal_login.login == account["email"]
    assert portal_login.password == DEMO_PASSWORD
