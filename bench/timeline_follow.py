"""Record timelines: what following costs every audited write, and how long a record's timeline takes to build.

1. **Audited write**: ``core.security.audit.record("update", …)`` with the followers check (one indexed query on
   ``core_record_follower``, 100,000 follower rows in the table) against the same call with the check switched off
   (the baseline, same run, alternating blocks); then the cost when the record *is* followed (the job asked for,
   an outbox row).
2. **Timeline**: ``core.timeline.feed.build`` for a record with 300 audit rows (changes in words) and 100 notes,
   among 200,000 audit rows of other records.

    .venv/bin/python bench/timeline_follow.py [--writes 2000] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from httptiming import pct

MODEL = "crm_contacts.person"


async def seed(target: int) -> None:
    from core.bulk import insert_rows
    from core.security.models import AuditLog
    from core.timeline.models import RecordFollower, RecordNote

    for start in range(0, 100_000, 10_000):
        await insert_rows(
            RecordFollower,
            [
                {"model": MODEL, "record_id": 1_000_000 + i, "user_id": 1 + i % 50, "url": ""}
                for i in range(start, start + 10_000)
            ],
        )
    for start in range(0, 200_000, 10_000):
        await insert_rows(
            AuditLog,
            [
                {
                    "action": "update",
                    "model": MODEL,
                    "record_id": str(2_000_000 + i),
                    "changes": {"name": ["a", "b"]},
                    "user_login": "x",
                }
                for i in range(start, start + 10_000)
            ],
        )
    await insert_rows(
        AuditLog,
        [
            {
                "action": "update",
                "model": MODEL,
                "record_id": str(target),
                "user_login": "x",
                "changes": {"name": [f"n{i}", f"n{i + 1}"], "phone": ["+8613812345678", "+8613987654321"]},
            }
            for i in range(300)
        ],
    )
    await insert_rows(
        RecordNote,
        [
            {"model": MODEL, "record_id": target, "body": f"note {i}", "author_id": None, "mentions": [], "url": ""}
            for i in range(100)
        ],
    )


async def writes(n: int, record_id: int) -> list[float]:
    """Each audited inside its own transaction, as every write path does."""
    from core import db
    from core.security import audit

    out = []
    for i in range(n):
        started = time.perf_counter()
        async with db.atomic():
            await audit.record("update", model=MODEL, record_id=record_id, changes={"name": [f"a{i}", f"b{i}"]})
        out.append(time.perf_counter() - started)
    return out


async def run(url: str, n: int, label: str) -> None:
    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.security.access import Access, policy
    from core.security.principal import load
    from core.security.users import create_user
    from core.settings import Settings
    from core.timeline import feed, notes

    settings = Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench")
    db.configure(url)
    await lifecycle.ensure_kernel()
    await lifecycle.install(["crm_contacts"], discover())
    await boot(settings)
    from crm_contacts.models import Person

    admin = await create_user("bench_admin", "Bench Admin", "Correct-Horse-42!", roles=["admin"])
    target = int((await Person.insert(Person(name="Target", owner=admin)).returning(Person.id))[0]["id"])
    started = time.perf_counter()
    await seed(target)
    print(f"{label}: 100,000 followers, 200,300 audit rows, 100 notes seeded in {time.perf_counter() - started:.1f} s")
    real = notes.audited

    async def off(*args: Any, **kwargs: Any) -> None:
        return None

    with_check: list[float] = []
    without: list[float] = []
    block = max(n // 10, 1)
    for _ in range(10):
        notes.audited = off  # type: ignore[assignment]
        without += await writes(block, target)
        notes.audited = real  # type: ignore[assignment]
        with_check += await writes(block, target)
    added = (statistics.median(with_check) - statistics.median(without)) * 1000
    print(f"  audit.record, {len(without)} + {len(with_check)} writes of an unfollowed record, alternating blocks:")
    print(
        f"    without the followers check (baseline): p50 {pct(without, 0.5):6.3f} ms  p95 {pct(without, 0.95):6.3f} ms"
    )
    print(
        f"    with it:                                p50 {pct(with_check, 0.5):6.3f} ms  "
        f"p95 {pct(with_check, 0.95):6.3f} ms"
    )
    print(
        f"    added: {added:+.3f} ms at the median "
        f"(ratio {statistics.median(with_check) / statistics.median(without):.2f})"
    )
    who = await load(admin, implied=policy().implied)
    await notes.follow(Access(who), MODEL, target, f"/contacts/people/{target}")
    followed = await writes(max(n // 10, 1), target)
    print(f"  audit.record of a followed record (asks core.timeline_changed): p50 {pct(followed, 0.5):6.3f} ms")
    times = []
    for _ in range(30):
        started = time.perf_counter()
        built = await feed.build(Access(who), MODEL, target)
        times.append(time.perf_counter() - started)
    print(
        f"  feed.build: {len(built.items)} items (300 changes in words + notes): p50 {pct(times, 0.5):6.2f} ms  "
        f"p95 {pct(times, 0.95):6.2f} ms"
    )


async def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--pg", default="", help="also run on PostgreSQL (an admin URL, a database is made)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    await run(f"sqlite:///{folder / 'bench.sqlite3'}", args.writes, "SQLite")
    if args.pg:
        from core.testing import pg_admin

        name = f"crm_bench_{uuid.uuid4().hex[:8]}"
        await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{name}"')
        try:
            await run(args.pg.rsplit("/", 1)[0] + "/" + name, args.writes, "PostgreSQL")
        finally:
            await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
