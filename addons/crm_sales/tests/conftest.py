"""Fixtures for crm_sales tests: the addon booted on SQLite and PostgreSQL with a small sales organisation."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.security.access import Access

# sales_helpers beside this file, for tests collected with --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))


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


@pytest.fixture
async def org(crm_boot: Any) -> Org:
    runtime = await crm_boot("crm_sales")
    return await build_org(runtime)
