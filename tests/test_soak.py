"""The soak test, short (bench/soak.py runs it for 10 minutes): mixed load against deploy/cluster.sh on
PostgreSQL — API reads and writes, pages, a contacts import, quotes sent (PDF e-mailed to a local SMTP sink) and
accepted (orders pushed to a real trytond) — while a job worker and a web process are SIGKILLed and Redis is
restarted. Every effect is counted outside the CRM: nothing lost, nothing done twice, no server error outside
the fault windows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.tryton, pytest.mark.slow]


def _soak() -> Any:  # bench/ is no package: load the script as a module (registered: its dataclasses need it)
    spec = importlib.util.spec_from_file_location("crm_bench_soak", Path(__file__).parents[1] / "bench" / "soak.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_nothing_lost_or_done_twice_under_kills_and_a_redis_restart(tmp_path: Path) -> None:
    figures = _soak().run(
        0.3,
        import_rows=300,
        workdir=tmp_path,
        fault_every=2.0,
        grace=3.0,
        drain=90.0,
        customers=4,
        clients=3,
        warmup=2.0,
        sequence=("web", "redis", "worker"),  # the small import is done before the worker kill
    )
    print(figures.report())
    kinds = [what.split(":")[0] for what, _, _ in figures.faults]
    assert kinds.count("worker") >= 1 and kinds.count("web") >= 1 and kinds.count("redis") == 1, kinds
    assert figures.lost == [], figures.lost[:20]
    assert figures.duplicate_mails == 0 and figures.sales_twice == 0
    assert figures.outside_windows() == [], figures.outside_windows()[:10]
    # the load did happen and reached the outside world through the faults
    assert figures.requests["api_read"] and figures.requests["api_write"] and figures.requests["page"]
    assert figures.quotes_sent >= 1 and figures.mails >= figures.quotes_sent and figures.orders >= 1
    assert figures.rss_start and figures.rss_problems() == []
