"""Helpers shared by crm_sales tests (a uniquely named module: tests of several addons run together)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.security.access import Access


async def new_deal(acc: Access, name: str = "Deal", revenue: str = "1000", **extra: Any) -> int:
    """A deal through the real path: a lead, qualified (which creates or matches the contact)."""
    from crm_sales import leads, pipeline

    lead_id = await leads.create_lead(acc, {"name": name, "contact_name": extra.pop("contact", f"{name} Buyer"),
                                            "email": extra.pop("email", ""), "expected_revenue": revenue,
                                            "language": extra.pop("language", "zh_CN"), **extra})
    return await pipeline.qualify(acc, lead_id)


@dataclass
class Org:
    """Team A (leader ``manager``; members ``rep1``, ``rep2``) and team B (``rep3``); user ids and helpers."""

    ids: dict[str, int]
    team_a: int
    team_b: int
    runtime: Any
    accesses: dict[str, Access] = field(default_factory=dict)

    async def acc(self, login: str) -> Access:
        from core.security import access, principal

        who = await principal.load(self.ids[login], implied=access.policy().implied)
        return Access(who)


async def build_org(runtime: Any) -> Org:
    from core.security.users import create_team
    from core.testing import make_user

    ids = {"rep1": await make_user("rep1", "sales_rep"), "rep2": await make_user("rep2", "sales_rep"),
           "rep3": await make_user("rep3", "sales_rep"), "manager": await make_user("manager", "sales_manager"),
           "fin": await make_user("fin", "finance")}
    team_a = await create_team("Team A", leader=ids["manager"], members=[ids["rep1"], ids["rep2"]])
    team_b = await create_team("Team B", members=[ids["rep3"]])
    return Org(ids=ids, team_a=team_a, team_b=team_b, runtime=runtime)
