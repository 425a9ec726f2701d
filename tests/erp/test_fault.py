"""Fault injection: orders synced to a real trytond by `crm worker` processes on Redis while workers are
SIGKILLed repeatedly and Redis is restarted once; every order must exist in Tryton exactly once with a right
binding. N from $CRM_ERP_FAULT_ORDERS (default 200, pushed in batches by 2 workers × 2 threads at ~4 orders/s:
every kill and the Redis restart land while batches are in flight, each fault kind as in the large run). The
issue's 1,000-order floor is ``CRM_ERP_FAULT_ORDERS=1000`` here (~4 minutes in CI, 6 of the suite's 40) or
``bench/erp_fault.py --orders 1000``; the 10k-order run with ≥ 10 kills is bench/erp_fault.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tryton, pytest.mark.slow]

ORDERS = int(os.environ.get("CRM_ERP_FAULT_ORDERS", "200"))


def test_orders_reach_tryton_exactly_once_despite_kills_and_a_redis_restart(tmp_path: Path) -> None:
    from erp_bridge.testing import fault

    # a kill every 4 s from the workers' start: the four the test needs (the Redis restart with the second) fall
    # in the first 16 s, while ~50 s of batches are still to push
    figures = fault.run(ORDERS, workers=2, threads=2, kill_every=4.0, min_kills=4,
                         max_kills=6, deadline=720, workdir=tmp_path)
    print(figures.line())
    assert 4 <= figures.kills <= 6 and figures.redis_restarts == 1
    # each kill struck while orders were still unsynced (a kill after the last push would prove nothing)
    assert figures.kills_in_flight >= 4, figures.line()
    assert figures.problems == [], figures.problems[:20]
