from __future__ import annotations

import asyncio

from core import scheduler
from core.addon import Every
from core.discovery import Discovered
from core.models import Outbox, ScheduleTick


async def test_each_tick_fires_once_across_competing_schedulers(crm_boot, found: Discovered) -> None:
    """Four schedulers race on the same ticks (as on four machines): each tick fires exactly once."""
    await crm_boot("crm_testbase", found=found)
    every = [Every(seconds=10, actor="crm_testbase.tick")]
    now = 1_000_000.0
    results = await asyncio.gather(*[scheduler.fire_due(every, now=now) for _ in range(4)])
    fired = [key for keys in results for key in keys]
    assert fired == ["crm_testbase.tick@100000"]
    assert await Outbox.count().where(Outbox.actor == "crm_testbase.tick") == 1
    assert await scheduler.fire_due(every, now=now + 5) == []  # same slot
    assert await scheduler.fire_due(every, now=now + 10) == ["crm_testbase.tick@100001"]
    assert await ScheduleTick.count() == 2


def test_slot_is_the_interval_index() -> None:
    assert scheduler.slot(Every(minutes=15, actor="x.y"), 3600.0) == 4
