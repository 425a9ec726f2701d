"""Helpers shared by crm_service tests (a uniquely named module: tests of several addons run together)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.security.access import Access


@dataclass
class Desk:
    """Team "Support" (leader ``lead``; agents ``agent1``, ``agent2``), team "Billing" (``agent3``), a manager."""

    ids: dict[str, int]
    support: int
    billing: int
    runtime: Any

    async def acc(self, login: str) -> Access:
        from core.security import access, principal

        return Access(await principal.load(self.ids[login], implied=access.policy().implied))


async def build_desk(runtime: Any) -> Desk:
    from core.security.users import create_team
    from core.testing import make_user

    ids = {"agent1": await make_user("agent1", "service_agent"), "agent2": await make_user("agent2", "service_agent"),
           "agent3": await make_user("agent3", "service_agent"), "lead": await make_user("lead", "service_agent"),
           "boss": await make_user("boss", "service_manager")}
    support = await create_team("Support", leader=ids["lead"], members=[ids["agent1"], ids["agent2"]])
    billing = await create_team("Billing", members=[ids["agent3"]])
    return Desk(ids=ids, support=support, billing=billing, runtime=runtime)
