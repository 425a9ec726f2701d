"""crm_marketing journeys: enrollment and advance rate, beside a baseline measured in the same run.

A segment of N people enters a journey (condition → add a tag → set the stage) and the tick advances everyone
through it, each step with its conditional move (what makes retries act once), 50 enrollments a transaction;
beside it, the same journey advanced one enrollment per transaction (the fallback path, what it did before).
Baseline: the same effects written directly, set-based (one INSERT … SELECT of the tags, one UPDATE of the stages).

    .venv/bin/python bench/marketing_journeys.py [--people 5000] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from marketing_send import PG_ADMIN, seed  # noqa: E402


async def run(backend: str, people: int) -> None:
    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings

    tmp = tempfile.mkdtemp()
    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    if backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp}/bench.sqlite3"
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_marketing"], discover())
        await boot(Settings(data_dir=Path(tmp), database_url=url, redis_url=None, secret_key="bench"))
        await seed(people)
        from crm_marketing import journeys, segments
        from crm_marketing.models import Journey, Segment

        segment = int((await Segment.insert(Segment(name="all", condition={})))[0]["id"])
        members = (await segments.build(segment))["count"]
        def steps_of(tag: str, stage: str) -> list[dict[str, object]]:
            return [
                {"kind": "condition", "condition": {"field": "stage", "op": "ne", "value": "lost"}},
                {"kind": "add_tag", "tag": tag},
                {"kind": "set_stage", "stage": stage},
            ]

        async def journey_of(name: str, tag: str, stage: str) -> int:
            row = Journey(
                name=name,
                trigger=await journeys.check_trigger({"type": "segment", "segment": segment}),
                steps=await journeys.check_steps(steps_of(tag, stage)),
                is_active=True,
            )
            await row.save()
            return int(row.id)

        batched, single = await journey_of("bench", "nurtured", "prospect"), await journey_of("one", "single", "loyal")
        started = time.perf_counter()
        entered = await journeys.enroll(batched)
        enroll_s = time.perf_counter() - started
        await journeys.enroll(single)

        # the per-enrollment path (one transaction and one person read per enrollment: what advance did before
        # it grouped them, and still does for a group that failed), measured in the same run
        from crm_marketing.models import JourneyEnrollment

        sch = await segments.schema()
        one = {int(j["id"]): j for j in await Journey.select().where(Journey.id == single)}
        ids = [int(r["id"]) for r in await JourneyEnrollment.select(JourneyEnrollment.id).where(
            JourneyEnrollment.journey == single)]
        await Journey.update({Journey.is_active: False}).where(Journey.id == single)
        started = time.perf_counter()
        await journeys._one_by_one(ids, one, sch)
        single_s = time.perf_counter() - started

        started = time.perf_counter()
        advanced = 0
        while True:
            n = await journeys.advance()
            advanced += n
            if n == 0:
                break
        advance_s = time.perf_counter() - started
        started = time.perf_counter()
        await Journey.raw('INSERT INTO "crm_contacts_tag" ("name", "color", "version") VALUES (\'baseline\', \'\', 1)')
        await Journey.raw(
            'INSERT INTO "crm_contacts_person_tag" ("person", "tag") SELECT m."person", t."id" '
            'FROM "crm_marketing_segment_member" m, "crm_contacts_tag" t WHERE t."name" = \'baseline\''
        )
        await Journey.raw(
            'UPDATE "crm_contacts_person" SET "stage" = \'customer\' WHERE "id" IN '
            '(SELECT "person" FROM "crm_marketing_segment_member")'
        )
        base_s = time.perf_counter() - started
        print(
            f"[{backend}] {members:,} people: enrolled {entered:,} in {enroll_s:.2f} s; advanced {advanced:,} "
            f"through 3 steps in {advance_s:.2f} s ({advanced / advance_s:,.0f} people/s, "
            f"{3 * advanced / advance_s:,.0f} steps/s); one enrollment per transaction {single_s:.2f} s "
            f"({len(ids) / single_s:,.0f} people/s, batched ×{single_s / advance_s:.1f} faster); baseline set-based "
            f"writes of the same effects {base_s:.3f} s (ours ×{advance_s / base_s:,.0f} slower)"
        )
    finally:
        if backend == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.backend, args.people))


if __name__ == "__main__":
    main()
