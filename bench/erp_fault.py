"""The large fault run: 10k orders (``--orders``) to a real trytond with ≥ 10 worker SIGKILLs and one Redis
restart; prints orders, kills, duplicates prevented, time and any order not in Tryton exactly once.

    .venv/bin/python bench/erp_fault.py --orders 10000 --kills 12

2026-11-23, 2-core machine, batches of 20: orders=10000 worker_kills=12 redis_restarts=1
duplicates_prevented=379 time=2442s (4.1 orders/s, creating the 10k CRM orders included) problems=0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def main() -> int:
    from erp_bridge.testing import fault

    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=12)
    # one trytond on SQLite takes one write at a time: more concurrent batches only wait for each other
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=4 * 3600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="erp-fault-") as tmp:
        figures = fault.run(args.orders, workers=args.workers, threads=args.threads, kill_every=10.0,
                            min_kills=args.kills, max_kills=args.kills, deadline=args.deadline, workdir=Path(tmp))
    print(figures.line())
    for problem in figures.problems[:50]:
        print("  ", problem)
    return 1 if figures.problems else 0


if __name__ == "__main__":
    sys.exit(main())
