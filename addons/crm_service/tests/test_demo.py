"""The demo data installs: a team with its leader and agent, SLA policies, tickets in every state with their
history, articles in Chinese and English that the search finds."""

from __future__ import annotations

from typing import Any

from core import data, lifecycle
from core.discovery import discover
from core.security.models import User
from core.security.users import create_user


async def test_demo_desk(crm_boot: Any) -> None:
    from crm_service import kb
    from crm_service.models import Article, StateChange, Ticket

    from core.security import access, principal

    await crm_boot()  # kernel only: demo users first, as `crm demo` does
    for role in ("sales_rep", "sales_manager", "service_agent", "service_manager"):
        user_id = await create_user(role, role.title(), "Demo-Pass-2026!", roles=[role])
        await data.bind("core", f"user_{role}", User, user_id)
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
