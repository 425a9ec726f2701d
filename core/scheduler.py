"""Periodic schedules, safe to run on several machines at once.

Each tick of each schedule has a key ``<actor>@<slot>``; the scheduler that inserts the key (a unique
column, in the same transaction as the outbox row) fires it, every other one sees the key taken and skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from core import db, outbox
from core.addon import Every
from core.jobs import enqueue
from core.models import ScheduleTick

log = logging.getLogger("crm.scheduler")


def slot(schedule: Every, now: float) -> int:
    return int(now // schedule.interval)


async def fire_due(schedules: Iterable[Every], now: float | None = None) -> list[str]:
    """Fire every schedule whose current slot has not fired yet; returns the keys this call fired."""
    now = time.time() if now is None else now
    fired: list[str] = []
    for schedule in schedules:
        key = f"{schedule.actor}@{slot(schedule, now)}"
        if await ScheduleTick.exists().where(ScheduleTick.key == key):
            continue
        try:
            async with db.atomic():
                await ScheduleTick.insert(ScheduleTick(key=key))
                await enqueue(schedule.actor, dedup_key=f"schedule:{key}")
        except Exception as exc:  # unique violation: another scheduler won this tick
            log.debug("tick %s taken elsewhere: %s", key, exc)
            continue
        fired.append(key)
    return fired


async def run_forever(schedules: list[Every], stop: asyncio.Event, interval: float = 1.0,
                      sweep_every: float = 10.0) -> None:
    """The scheduler loop: fire due ticks and sweep the outbox until ``stop`` is set."""
    last_sweep = 0.0
    while not stop.is_set():
        try:
            await fire_due(schedules)
            if time.monotonic() - last_sweep >= sweep_every:
                await outbox.sweep()
                last_sweep = time.monotonic()
        except Exception:
            log.exception("scheduler tick failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
