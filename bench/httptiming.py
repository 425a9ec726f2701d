"""Timing helpers shared by the page benches (``python bench/x.py`` puts this folder on sys.path)."""

from __future__ import annotations

import time
from typing import Any


async def timed(client: Any, path: str, n: int) -> list[float]:
    """Seconds for each of ``n`` GETs of ``path``; any non-200 answer stops the bench (never timed as fast)."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        response = await client.get(path)
        out.append(time.perf_counter() - t)
        assert response.status_code == 200, response.text[:300]
    return out


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000
