"""Helpers shared by crm_reports tests (a uniquely named module: tests of several addons run together): a sales
organisation over crm_sales' datasets (the bundled provider) with generated deals of known figures."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from core.security.access import Access

DEALS = "crm_sales.opportunities"
REGIONS = ("华东", "华南", "North")
SOURCES = ("web", "fair", "=cmd|' /C calc'!A0")  # the last one: a formula a spreadsheet must not run


@dataclass
class Org:
    ids: dict[str, int]
    runtime: Any
    deals: list[dict[str, Any]] = field(default_factory=list)
    stages: dict[int, str] = field(default_factory=dict)

    async def acc(self, login: str) -> Access:
        from core.security import access, principal

        return Access(await principal.load(self.ids[login], implied=access.policy().implied))


async def build_org(runtime: Any, deals: int = 60, seed: int = 7) -> Org:
    """Team A (leader ``manager``; ``rep1``, ``rep2``), team B (``rep3``), ``fin`` (finance), ``admin``; ``deals``
    deals spread over owners, stages, states, sources, regions and the months of 2026."""
    from core import datasets
    from core.bulk import insert_rows
    from core.security import access, principal
    from core.security.users import create_team
    from core.testing import make_user

    ids = {"rep1": await make_user("rep1", "sales_rep", email="rep1@example.com"),
           "rep2": await make_user("rep2", "sales_rep"), "rep3": await make_user("rep3", "sales_rep"),
           "manager": await make_user("manager", "sales_manager", email="manager@example.com"),
           "fin": await make_user("fin", "finance", email="fin@example.com"),
           "boss": await make_user("boss", "admin")}
    team_a = await create_team("Team A", leader=ids["manager"], members=[ids["rep1"], ids["rep2"]])
    team_b = await create_team("Team B", members=[ids["rep3"]])
    # the tables come from the dataset the provider declares: crm_reports' tests name no other addon's module
    boss = access.Access(await principal.load(ids["boss"], implied=access.policy().implied))
    Opportunity = (await datasets.dataset(DEALS, boss)).table  # noqa: N806
    PipelineStage = Opportunity._meta.get_column_by_name("stage")._foreign_key_meta.resolved_references  # noqa: N806
    stages = {r["id"]: r["name"] for r in await PipelineStage.select(PipelineStage.id, PipelineStage.name).where(
        PipelineStage.team.is_null())}
    rnd = random.Random(seed)
    owners = [("rep1", team_a), ("rep2", team_a), ("rep3", team_b), ("manager", team_a)]
    rows = []
    for i in range(deals):
        login, team = owners[i % len(owners)]
        created = dt.datetime(2026, 1 + i % 12, 1 + i % 27, 10, 0, tzinfo=dt.UTC)
        state = ("open", "won", "lost")[rnd.randrange(3)]
        rows.append({"name": f"Deal {i}", "stage": rnd.choice(sorted(stages)), "state": state,
                     "expected_revenue": Decimal(rnd.randrange(100, 100_000)) / 100, "owner": ids[login],
                     "team": team, "source": SOURCES[i % 3], "region": REGIONS[i % 2 + (i % 5 == 0)],
                     "created_at": created, "closed_at": created + dt.timedelta(days=20) if state != "open" else None,
                     "probability": rnd.randrange(0, 101)})
    new_ids = await insert_rows(Opportunity, rows)
    return Org(ids=ids, runtime=runtime, deals=[{**r, "id": i} for r, i in zip(rows, new_ids, strict=True)],
               stages=stages)
