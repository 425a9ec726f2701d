"""crm_marketing: segment build and campaign send rate, each beside a baseline measured in the same run.

1. Segment build: one ``INSERT … SELECT`` over N people (3 filters: province, stage, a tag), against the
   baseline of loading the same people and evaluating the same condition in Python (``core.conditions.matches``).
2. Send: personalised campaign messages (Jinja2 sandbox, css-inline, tracked links, per-recipient claim and
   state writes) through ``crm_marketing.send_batch`` to a local aiosmtpd sink, one process, against the raw
   baseline of aiosmtplib sending the same rendered messages over one connection, without the database.

    .venv/bin/python bench/marketing_send.py [--people 20000] [--recipients 2000] [--backend sqlite|postgres]

The issue's targets (≥ 200 messages/s with 2 worker processes; a 1M-contact segment in ≤ 10 s on PostgreSQL)
need the 2-worker and 1M-row runs, which this script does not do: it prints the single-process figures.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CONDITION = {
    "all": [
        {"field": "province", "op": "in", "value": ["广东", "上海"]},
        {"field": "stage", "op": "ne", "value": "lost"},
        {"field": "tags", "op": "contains", "value": "vip"},
    ]
}


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.count += 1
        return "250 OK"


async def seed(people: int) -> None:
    from crm_contacts.models import Person, PersonTag, Tag

    from core.bulk import insert_rows

    rng = random.Random(13)
    provinces, stages = ["广东", "上海", "北京", "浙江"], ["lead", "customer", "loyal", "lost"]
    rows = [
        {
            "name": f"客户{i}",
            "email": f"c{i}@example.cn",
            "email_key": f"c{i}@example.cn",
            "province": rng.choice(provinces),
            "city": "",
            "stage": rng.choice(stages),
            "language": "zh_CN",
        }
        for i in range(people)
    ]
    ids = await insert_rows(Person, rows)
    tag = (await Tag.insert(Tag(name="vip")))[0]["id"]
    await insert_rows(PersonTag, [{"person": pid, "tag": tag} for pid in ids if rng.random() < 0.5])


async def bench_segment() -> tuple[int, float, float]:
    from crm_contacts.models import Person, PersonTag
    from crm_marketing import segments
    from crm_marketing.models import Segment

    from core import conditions

    segment_id = int((await Segment.insert(Segment(name="bench", condition=CONDITION)))[0]["id"])
    started = time.perf_counter()
    built = await segments.build(segment_id)
    sql = time.perf_counter() - started
    started = time.perf_counter()
    node, _ = await segments.parse(CONDITION)
    tags: dict[int, list[str]] = {}
    for row in await PersonTag.select(PersonTag.person, PersonTag.tag.name):
        tags.setdefault(int(row["person"]), []).append(row["tag.name"])
    matched = 0
    for row in await Person.select(Person.id, Person.province, Person.stage):
        matched += conditions.matches(node, {**row, "tags": tags.get(int(row["id"]), [])})
    python = time.perf_counter() - started
    assert matched == built["count"], (matched, built)
    return int(built["count"]), sql, python


async def bench_send(port: int, sink: Sink, recipients: int) -> tuple[int, float, float]:
    import aiosmtplib
    from crm_marketing import campaigns, sending

    sys.path.insert(0, str(Path(__file__).parent))
    from crm_marketing.models import Campaign, CampaignRecipient, Segment, SegmentMember

    from core.security.access import Access, policy
    from core.security.principal import load
    from core.security.users import create_user

    members = await SegmentMember.select(SegmentMember.person).limit(recipients)
    static = int((await Segment.insert(Segment(name="list", is_static=True)))[0]["id"])
    await SegmentMember.insert(*(SegmentMember(segment=static, person=m["person"]) for m in members))
    user = await create_user("bench", "Bench", "Correct-Horse-42!", roles=["marketing"])
    admin = Access(await load(user, implied=policy().implied))
    body = (
        "<p>{{ contact.name }}，您好！{{ contact.company }}双十二专享。</p>"
        '<p><a href="https://shop.example.cn/1212">立即选购</a> <a href="https://shop.example.cn/">首页</a></p>'
    )
    campaign = int(
        (
            await Campaign.insert(
                Campaign(name="bench", segment=static, subject_zh="{{ contact.name }} 优惠", body_zh=body)
            )
        )[0]["id"]
    )
    count = await campaigns.send(admin, campaign)
    batches = (
        await CampaignRecipient.select(CampaignRecipient.id)
        .where(CampaignRecipient.campaign == campaign)
        .order_by(CampaignRecipient.id)
    )
    ids = [int(r["id"]) for r in batches]
    before = sink.count
    started = time.perf_counter()
    for start in range(0, len(ids), campaigns.BATCH):
        part = ids[start : start + campaigns.BATCH]
        await sending.send_batch(campaign, part[0], part[-1])
    ours = time.perf_counter() - started
    assert sink.count - before == count, (sink.count, count)
    # the baseline sends the same rendered messages (as the send makes them) without the database
    from marketing_send_workers import rendered

    messages = await rendered(campaign, count)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await smtp.connect()
    started = time.perf_counter()
    for to, data in messages:
        await smtp.sendmail("news@example.com", [to], data)
    raw = time.perf_counter() - started
    await smtp.quit()
    return count, ours, raw


async def run(backend: str, people: int, recipients: int) -> None:
    from aiosmtpd.controller import Controller

    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings
    from core.testing import free_port

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
    sink, port = Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_marketing"], discover())
        await boot(
            Settings(
                data_dir=Path(tmp),
                database_url=url,
                redis_url=None,
                secret_key="bench",
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_from="news@example.com",
            )
        )
        await seed(people)
        members, sql, python = await bench_segment()
        print(
            f"[{backend}] segment of 3 filters over {people:,} people ({members:,} members): INSERT … SELECT "
            f"{sql:.3f} s; baseline Python evaluation of the same condition {python:.3f} s "
            f"(×{python / sql:.1f})"
        )
        count, ours, raw = await bench_send(port, sink, recipients)
        print(
            f"[{backend}] send {count:,} personalised messages in one process: {count / ours:,.0f} msg/s "
            f"({ours:.2f} s); baseline raw aiosmtplib, the same rendered messages, one connection, no database: "
            f"{count / raw:,.0f} msg/s (ours = {raw / ours:.0%} of raw)"
        )
    finally:
        controller.stop()
        if backend == "postgres":
            import asyncpg

            await db.current().close_connection_pool() if hasattr(db.current(), "close_connection_pool") else None
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(run(args.backend, args.people, args.recipients))


if __name__ == "__main__":
    main()
