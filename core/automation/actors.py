"""The rule engine's jobs: evaluate a reported change, tick time-based rules, scan one rule, run a batch of runs.
Each is idempotent (runs have unique keys and are claimed; a tick's window is claimed by a conditional update)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.jobs import actor


@actor("core.automation_event", max_retries=5)
async def automation_event(events: list[dict[str, Any]]) -> None:
    """The changes one transaction made: each matched against the rules, its runs done."""
    from core.automation import events as engine

    for event in events:
        await engine.handle(**event)


@actor("core.automation_tick", max_retries=1)
async def automation_tick() -> None:
    from core.automation import scans

    await scans.tick()


@actor("core.automation_scan", max_retries=5, time_limit_ms=600_000)
async def automation_scan(rule_id: int, start: str, end: str) -> None:
    from core.automation import scans

    await scans.scan(rule_id, dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end))


@actor("core.automation_run", max_retries=5, min_backoff_ms=2_000)
async def automation_run(run_ids: list[int]) -> None:
    from core.automation import runs

    await runs.execute([int(i) for i in run_ids])
