"""crm_marketing: a campaign sent by 2 real ``crm worker`` processes (Dramatiq on a Redis of its own, PostgreSQL in
a throw-away database) to an aiosmtpd sink in a process of its own, while a worker is SIGKILLed twice (and started
again each time); every message is counted at the sink by its Message-ID (one per recipient, stable across tries).

    .venv/bin/python bench/marketing_send_workers.py                        # 20k recipients, a quick run
    .venv/bin/python bench/marketing_send_workers.py --recipients 100000    # issue 13's figure

Prints the send rate (first to last delivery at the sink), recipients sent / failed / unknown / stuck, messages at
the sink, unique recipients received, lost (never received), received twice, marked sent but never received, in
doubt (``unknown``: received or not), and the baseline of the same run: raw aiosmtplib sending the same rendered
messages over one connection from one process, without the database.
A recipient whose message was in flight when its worker was killed is ``unknown`` (never sent again): the
figures say whether the sink got it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

PG_ADMIN = os.environ.get("CRM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CRM = str(Path(sys.executable).parent / "crm")


def sink_main(port: int, out: str) -> None:
    """The SMTP sink process: one line per message (wall time, Message-ID, recipients)."""
    from aiosmtpd.controller import Controller

    log = open(out, "a", buffering=1)  # noqa: SIM115 - for the life of the process

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
            mid = ""
            for line in envelope.content.split(b"\r\n"):
                if not line:
                    break
                if line[:11].lower() == b"message-id:":
                    mid = line[11:].strip().decode()
            log.write(f"{time.time():.6f}\t{mid}\t{','.join(envelope.rcpt_tos)}\n")
            return "250 OK"

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait, in every thread
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


def _redis(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(200):
        if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
            return proc
        time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _crm(env: dict[str, str], *args: str) -> None:
    out = subprocess.run([CRM, *args], env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"crm {' '.join(args)} failed: {out.stderr[-2000:]}")


def read_sink(path: Path) -> list[tuple[float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        at, mid, _to = line.split("\t")
        rows.append((float(at), mid))
    return rows


async def prepare(recipients: int) -> int:
    """N people in a static segment, one personalised campaign sent (its batches queued on Redis); its id."""
    sys.path.insert(0, str(Path(__file__).parent))
    from crm_contacts.models import Person
    from crm_marketing import campaigns
    from crm_marketing.models import Campaign, Segment, SegmentMember
    from marketing_send import seed

    from core.bulk import insert_rows
    from core.security.access import Access, policy
    from core.security.principal import load
    from core.security.users import create_user

    await seed(recipients)
    static = int((await Segment.insert(Segment(name="list", is_static=True)))[0]["id"])
    ids = [int(r["id"]) for r in await Person.select(Person.id)]
    await insert_rows(SegmentMember, [{"segment": static, "person": pid} for pid in ids])
    user = await create_user("bench", "Bench", "Correct-Horse-42!", roles=["marketing"])
    admin = Access(await load(user, implied=policy().implied))
    body = (
        "<p>{{ contact.name }}，您好！{{ contact.company }}双十二专享。</p>"
        '<p><a href="https://shop.example.cn/1212">立即选购</a> <a href="https://shop.example.cn/">首页</a></p>'
    )
    campaign = int((await Campaign.insert(
        Campaign(name="bench", segment=static, subject_zh="{{ contact.name }} 优惠", body_zh=body)))[0]["id"])
    # statistics of the freshly filled tables: without them the recipients' INSERT … SELECT planned nested loops
    # over "empty" tables and ran > 4 min at 100k (autovacuum analyzes them later in a real database)
    await Person.raw("ANALYZE")
    count = await campaigns.send(admin, campaign)
    assert count == recipients, (count, recipients)
    return campaign


async def states(campaign: int) -> collections.Counter[str]:
    from crm_marketing.models import CampaignRecipient

    rows = await CampaignRecipient.raw(
        'SELECT "state", count(*) AS n FROM "crm_marketing_campaign_recipient" WHERE "campaign" = {} '
        'GROUP BY "state"', campaign)
    return collections.Counter({r["state"]: int(r["n"]) for r in rows})


async def rendered(campaign: int, count: int) -> list[tuple[str, bytes]]:
    """The first ``count`` recipients' messages as the send renders them (compiled body, MIME bytes), each with a
    Message-ID of its own so the sink's per-recipient counts stay the campaign's."""
    from crm_marketing import campaigns, composer, mime
    from crm_marketing.models import Campaign, CampaignRecipient

    from core.runtime import current

    row = await Campaign.select().where(Campaign.id == campaign).first()
    rows = await CampaignRecipient.select().where(CampaignRecipient.campaign == campaign).order_by(
        CampaignRecipient.id).limit(count)
    contacts = await campaigns.contact_values([int(r["person"]) for r in rows])
    envelope = mime.Envelope(current().settings.smtp_from)
    compiled = composer.Compiled(dict(row), "zh_CN")
    out = []
    for r in rows:
        subject, html, text, links = compiled.render(contacts[int(r["person"])], int(r["id"]))
        out.append((r["email"], envelope.build(to=r["email"], subject=subject, text=text, html=html,
                                               message_id=f"<baseline-{r['id']}@example.com>",
                                               list_unsubscribe=links["unsubscribe_url"])))
    return out


async def baseline(port: int, messages: list[tuple[str, bytes]]) -> float:
    """Raw aiosmtplib: the same rendered messages over one connection, one process, no database; msg/s."""
    import aiosmtplib

    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await smtp.connect()
    started = time.perf_counter()
    for to, raw in messages:
        await smtp.sendmail("news@example.com", [to], raw)
    elapsed = time.perf_counter() - started
    await smtp.quit()
    return len(messages) / elapsed


async def run(recipients: int, threads: int, kills: int, drain: float, workdir: Path) -> None:
    from core import db, lifecycle
    from core.discovery import discover
    from core.runtime import boot
    from core.settings import Settings
    from core.testing import free_port, pg_admin

    name = f"crm_sendw_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    await pg_admin(f'CREATE DATABASE "{name}"', PG_ADMIN)
    redis_port, smtp_port = free_port(), free_port()
    sink_log = workdir / "sink.tsv"
    sink_log.touch()
    procs: list[subprocess.Popen[bytes]] = []
    redis = _redis(workdir, redis_port)
    sink = subprocess.Popen([sys.executable, __file__, "--sink", str(smtp_port), str(sink_log)],
                            start_new_session=True)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATABASE_URL": url, "CRM_REDIS_URL": redis_url, "CRM_DATA_DIR": str(workdir / "crm"),
        "CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(smtp_port), "CRM_SMTP_FROM": "news@example.com"}
    log = open(workdir / "workers.log", "ab")  # noqa: SIM115 - closed below

    def spawn(*args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([CRM, *args], env=env, stdout=log, stderr=log, start_new_session=True)
        procs.append(proc)
        return proc

    try:
        _crm(env, "init")
        _crm(env, "addons", "install", "crm_marketing")
        db.configure(url)
        await lifecycle.ensure_kernel()
        await boot(Settings(data_dir=workdir / "crm", database_url=url, redis_url=redis_url, secret_key="bench",
                            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_from="news@example.com"))
        del discover  # installed by the CLI above, like production
        t0 = time.monotonic()
        campaign = await prepare(recipients)
        print(f"seeded {recipients:,} people and queued the campaign in {time.monotonic() - t0:.0f} s", flush=True)
        workers = [spawn("worker", "--threads", str(threads)) for _ in range(2)]
        spawn("scheduler")  # its outbox sweep re-dispatches a killed worker's batch once the job's lease ran out
        marks = [(i + 1) / (kills + 1) for i in range(kills)]  # kill at 1/3 and 2/3 of the deliveries
        killed: list[str] = []
        kill_times: list[float] = []
        started = time.monotonic()
        last_progress, last_count = started, -1
        while True:
            received = sink_log.read_bytes().count(b"\n")
            if marks and received >= marks[0] * recipients:
                marks.pop(0)
                victim = len(killed) % 2
                kill_times.append(time.time())
                os.kill(workers[victim].pid, signal.SIGKILL)
                workers[victim].wait()
                workers[victim] = spawn("worker", "--threads", str(threads))
                killed.append(f"worker {victim} at {received:,} delivered ({time.monotonic() - started:.0f} s)")
                print("SIGKILL", killed[-1], flush=True)
            st = await states(campaign)
            if not marks and not (st["queued"] or st["sending"]):
                break
            if received != last_count:
                last_progress, last_count = time.monotonic(), received
            if time.monotonic() - last_progress > drain:
                print(f"no delivery for {drain:.0f} s: giving up with {dict(st)}", flush=True)
                break
            await asyncio.sleep(0.5)
        done_in = time.monotonic() - started
        st = await states(campaign)
        rows = read_sink(sink_log)
        per = collections.Counter(mid for _at, mid in rows)
        prefix = f"<crm-marketing-{campaign}-"
        ids = {int(mid[len(prefix):].split("@", 1)[0]) for mid in per if mid.startswith(prefix)}
        from crm_marketing.models import CampaignRecipient

        marked = {int(r["id"]): r["state"] for r in await CampaignRecipient.select(
            CampaignRecipient.id, CampaignRecipient.state).where(CampaignRecipient.campaign == campaign)}
        sent_missing = sum(1 for i, s in marked.items() if s == "sent" and i not in ids)
        never = sum(1 for i in marked if i not in ids)
        unknown_got = sum(1 for i, s in marked.items() if s == "unknown" and i in ids)
        twice = sum(1 for n in per.values() if n > 1)
        ours = sum(n for mid, n in per.items() if mid.startswith(prefix))
        times = sorted(at for at, _mid in rows)
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        rate = len(rows) / span
        # the pace while both workers ran, before the first kill (the rest includes the killed batches' leases)
        first_kill = kill_times[0] if kill_times else times[-1]
        before = [at for at in times if at <= first_kill]
        steady = len(before) / (before[-1] - before[0]) if len(before) > 1 else float("nan")
        for p in procs:
            p.send_signal(signal.SIGTERM)
        base_n = min(recipients, 5000)
        raw = await baseline(smtp_port, await rendered(campaign, base_n))
        load = os.getloadavg()
        print(f"\n{recipients:,} recipients, 2 workers × {threads} threads, {len(killed)} SIGKILLs "
              f"({'; '.join(killed)}); load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (2 cores)")
        print(f"send rate: {rate:,.0f} msg/s (first to last delivery at the sink, {span:.1f} s; every recipient "
              f"final after {done_in:.0f} s); {steady:,.0f} msg/s before the first kill")
        print(f"recipients: sent {st['sent']:,} / failed {st['failed']:,} / unknown {st['unknown']:,} "
              f"({unknown_got} of them received) / stuck {st['queued'] + st['sending']:,}")
        print(f"at the sink: {ours:,} messages, {len(ids):,} unique recipients of {len(marked):,}; "
              f"lost (never received) {never} (of them in doubt, state unknown: {st['unknown'] - unknown_got}); "
              f"received twice {twice}; marked sent but never received {sent_missing}; "
              f"in doubt (unknown) {st['unknown']}: {unknown_got} received, {st['unknown'] - unknown_got} not")
        print(f"baseline raw aiosmtplib, the same rendered messages ({base_n:,}), one connection, one process, no "
              f"database: {raw:,.0f} msg/s (2 workers = {rate / raw:.0%} of raw; before the first kill "
              f"{steady / raw:.0%})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        log.close()
        sink.send_signal(signal.SIGTERM)
        redis.kill()
        try:
            sink.wait(10)
        except subprocess.TimeoutExpired:
            sink.kill()
        redis.wait()
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', PG_ADMIN)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--sink":
        sink_main(int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=4, help="threads a worker")
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--drain", type=float, default=180.0, help="give up after this long without a delivery")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.recipients, args.threads, args.kills, args.drain, Path(tmp)))


if __name__ == "__main__":
    main()
