"""Mail → ticket through a real IMAP server (Dovecot, started here on 127.0.0.1 with a throwaway mail dir) into
crm_service on PostgreSQL: the delay from delivery to the ticket existing, and N mails fetched by a fetcher
that is SIGKILLed in the middle (once a share of the mails is in, at whatever it is doing then): how many were
lost and how many made two tickets.

1. latency: a fetcher polls continuously; mails are delivered (IMAP APPEND) one at a time and the time until
   the ticket row exists is recorded (p50 / p95; target p95 ≤ 10 s). Baseline in the same run: the bare IMAP
   round trip (APPEND then SEARCH finding it).
2. kill test: N mails delivered at ``--rate`` per second while one fetcher works through them; it is
   SIGKILLed when the mails done reach 1/3 and 2/3 (``--kills``), a fresh one started each time; then mails
   without an outcome (lost), Message-IDs with more than one ticket (duplicated) and the delay from each mail's
   delivery to its ticket (p50 / p95) are counted.

    .venv/bin/python bench/service_mail.py [--mails 10000] [--latency 30] [--kills 2] [--rate 40]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

DB = "crm_bench_mail"
ROOT = Path(__file__).resolve().parents[1]
FETCHER = """
import asyncio, sys, tempfile
from pathlib import Path
from core import db
from core.runtime import boot
from core.settings import Settings

async def main(url, port):
    db.configure(url)
    await boot(Settings(data_dir=Path(tempfile.mkdtemp()), database_url=url, redis_url=None, secret_key="bench"))
    from crm_service.mailbox import MailboxConfig, fetch_once
    cfg = MailboxConfig(host="127.0.0.1", port=port, user="support", password="secret")
    while True:
        if not await fetch_once(cfg, limit=200):
            await asyncio.sleep(0.2)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mail(i: int, tag: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"客户{i} <bench{i}@example.cn>"
    msg["To"] = "support@example.com"
    msg["Subject"] = f"{tag} 订单 {i} 没有收到"
    msg["Message-ID"] = f"<{tag}-{i}@bench.example.cn>"
    msg.set_content(f"订单 {i} 还没有收到，请帮忙查一下。")
    return msg.as_bytes()


def imap(port: int) -> imaplib.IMAP4:
    box = imaplib.IMAP4("127.0.0.1", port)
    box.login("support", "secret")
    box.select("INBOX")
    return box


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def count(url: str, sql: str, *args: object) -> int:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


def fetcher(url: str, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", FETCHER, url, str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def deliver(port: int, n: int, rate: float, sent: list[float]) -> None:
    """APPEND mails ``bulk-0`` … ``bulk-<n-1>`` at ``rate`` per second (0: as fast as the server takes them),
    recording when each one was in the mailbox (``time.time()``, comparable with the database's clock)."""
    box = imap(port)
    started = time.perf_counter()
    try:
        for i in range(n):
            if rate:
                time.sleep(max(0.0, started + i / rate - time.perf_counter()))
            box.append("INBOX", None, None, mail(i, "bulk"))
            sent.append(time.time())
    finally:
        box.logout()


async def kill_test(url: str, port: int, args: argparse.Namespace) -> None:
    """``args.mails`` mails delivered while a fetcher works through them; it is SIGKILLed each time the tickets
    made reach the next share of the mails (``--kills`` points spread evenly: 1/3 and 2/3 for two kills), at
    whatever it is doing then (a poll every 0.2-0.5 s, so a random point of its work), and a fresh one
    started. A schedule on progress, not on a timer: a fetcher killed every few seconds under load spent its
    life booting and never got through the mails."""
    sent: list[float] = []
    points = [args.mails * (k + 1) // (args.kills + 1) for k in range(args.kills)]
    bulk = "SELECT count(*) FROM crm_service_inbound_mail WHERE message_id LIKE '<bulk-%'"
    delivering = asyncio.ensure_future(asyncio.to_thread(deliver, port, args.mails, args.rate, sent))
    proc = fetcher(url, port)
    started = time.perf_counter()
    kills: list[str] = []
    last_progress, done = time.perf_counter(), 0
    try:
        while done < args.mails:
            await asyncio.sleep(random.uniform(0.2, 0.5))
            now_done = await count(url, bulk)
            if now_done > done:
                last_progress = time.perf_counter()
            done = now_done
            if points and done >= points[0]:
                points.pop(0)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                kills.append(f"{done:,} in, {time.perf_counter() - started:.0f} s")
                proc = fetcher(url, port)
            if time.perf_counter() - last_progress > args.stall:
                print(f"no progress for {args.stall:.0f} s at {done:,} mails: stopped")
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        await delivering
    took = time.perf_counter() - started
    lost = args.mails - await count(url, bulk)
    doubled = await count(url, "SELECT count(*) FROM (SELECT message_id FROM crm_service_message "
                               "WHERE message_id LIKE '<bulk-%' GROUP BY message_id HAVING count(*) > 1) d")
    made = await count(url, "SELECT count(*) FROM crm_service_ticket WHERE subject LIKE 'bulk %'")
    delays = await delivery_delays(url, sent)
    fresh = imap(port)  # a new session: another one's view of the flags is not refreshed
    unseen = len(fresh.search(None, "UNSEEN")[1][0].split())
    fresh.logout()
    print(f"{args.mails:,} mails delivered at {args.rate or 'full'} mails/s, fetcher SIGKILLed {len(kills)} times "
          f"({'; '.join(kills)}), {took:.0f} s ({args.mails / took:.0f} mails/s): lost {lost}, "
          f"duplicated {doubled}, tickets {made:,} (expected {args.mails:,}), still unseen on the server {unseen}")
    if delays:
        print(f"delivery → ticket over those mails: p50 {pct(delays, .5):.2f} s, p95 {pct(delays, .95):.2f} s, "
              f"max {max(delays):.2f} s (target p95 ≤ 10 s); load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")


async def delivery_delays(url: str, sent: list[float]) -> list[float]:
    """Seconds from each mail's delivery to its ticket's commit (the inbound-mail row is written with it)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT message_id, extract(epoch FROM created_at)::float8 AS at "
                                "FROM crm_service_inbound_mail WHERE message_id LIKE '<bulk-%'")
    finally:
        await conn.close()
    out = []
    for row in rows:
        i = int(row["message_id"][len("<bulk-"):].split("@", 1)[0])
        if i < len(sent):
            out.append(row["at"] - sent[i])
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--latency", type=int, default=30)
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs, spread evenly over the mails' progress")
    parser.add_argument("--rate", type=float, default=40.0, help="mails delivered per second (0: all at once)")
    parser.add_argument("--stall", type=float, default=180.0, help="give up after this long without progress")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from core import db, lifecycle
    from core.discovery import discover
    from core.testing import pg_admin, start_dovecot, stop_dovecot

    url = args.pg.rsplit("/", 1)[0] + "/" + DB
    await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await pg_admin(url=args.pg, sql=f'CREATE DATABASE "{DB}"')
    dovecot, port, root = start_dovecot("crm-bench-dovecot-")
    try:
        db.configure(url)
        await lifecycle.ensure_kernel()
        await lifecycle.install(["crm_service"], discover())

        box = imap(port)
        base: list[float] = []
        for i in range(args.latency):
            t = time.perf_counter()
            box.append("INBOX", None, None, mail(i, "probe"))
            box.search(None, "HEADER", "Message-ID", f"<probe-{i}@bench.example.cn>")
            base.append(time.perf_counter() - t)
        box.store("1:*", "+FLAGS", "\\Deleted")
        box.expunge()

        proc = fetcher(url, port)
        waits: list[float] = []
        try:
            # a warm-up mail: the fetcher's start (imports, boot) is not part of the delay being measured
            box.append("INBOX", None, None, mail(0, "warmup"))
            while not await count(url, "SELECT count(*) FROM crm_service_inbound_mail WHERE message_id = $1",
                                  "<warmup-0@bench.example.cn>"):
                await asyncio.sleep(0.1)
            for i in range(args.latency):
                t = time.perf_counter()
                box.append("INBOX", None, None, mail(i, "latency"))
                while not await count(url, "SELECT count(*) FROM crm_service_inbound_mail WHERE message_id = $1",
                                      f"<latency-{i}@bench.example.cn>"):
                    await asyncio.sleep(0.02)
                waits.append(time.perf_counter() - t)
        finally:
            proc.kill()
            proc.wait()
        print(f"mail → ticket, {args.latency} mails one at a time, fetcher polling: p50 {pct(waits, .5):.2f} s, "
              f"p95 {pct(waits, .95):.2f} s (target ≤ 10 s); baseline IMAP append + search p95 "
              f"{pct(base, .95) * 1000:.1f} ms")

        box.logout()
        await kill_test(url, port, args)
    finally:
        stop_dovecot(dovecot, root)
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
