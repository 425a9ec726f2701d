"""Mail → ticket through a real IMAP server (Dovecot, started here on 127.0.0.1 with a throwaway mail dir) into
crm_service on PostgreSQL: the delay from delivery to the ticket existing, and N mails fetched by a fetcher
that is SIGKILLed again and again (at a random moment once it is processing): how many were lost and how
many made two tickets.

1. latency: a fetcher polls continuously; mails are delivered (IMAP APPEND) one at a time and the time until
   the ticket row exists is recorded (p50 / p95; target p95 ≤ 10 s). Baseline in the same run: the bare IMAP
   round trip (APPEND then SEARCH finding it).
2. kill test: N mails delivered at once; the fetcher process is started and SIGKILLed every ``--kill-every``
   seconds (a fresh one each time) until every mail is processed; then mails without an outcome (lost) and
   Message-IDs with more than one ticket (duplicated) are counted.

    .venv/bin/python bench/service_mail.py [--mails 10000] [--latency 30] [--kill-every 4]
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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=10_000)
    parser.add_argument("--latency", type=int, default=30)
    parser.add_argument("--kill-every", type=float, default=3.0)
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

        started = time.perf_counter()
        for i in range(args.mails):
            box.append("INBOX", None, None, mail(i, "bulk"))
        print(f"delivered {args.mails:,} mails in {time.perf_counter() - started:.0f} s")
        kills = 0
        started = time.perf_counter()
        while True:
            done = await count(url, "SELECT count(*) FROM crm_service_inbound_mail WHERE message_id LIKE '<bulk-%'")
            if done >= args.mails:
                break
            proc = fetcher(url, port)
            # killed at a random moment once it is processing (booting takes a few seconds under load)
            deadline = time.perf_counter() + args.kill_every * random.uniform(0.5, 1.5)
            while True:
                await asyncio.sleep(0.5)
                now_done = await count(url, "SELECT count(*) FROM crm_service_inbound_mail "
                                            "WHERE message_id LIKE '<bulk-%'")
                if now_done >= args.mails or (now_done > done and time.perf_counter() >= deadline):
                    break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
        took = time.perf_counter() - started
        lost = args.mails - await count(url, "SELECT count(*) FROM crm_service_inbound_mail "
                                             "WHERE message_id LIKE '<bulk-%'")
        doubled = await count(url, "SELECT count(*) FROM (SELECT message_id FROM crm_service_message "
                                   "WHERE message_id LIKE '<bulk-%' GROUP BY message_id HAVING count(*) > 1) d")
        tickets = await count(url, "SELECT count(*) FROM crm_service_ticket WHERE subject LIKE 'bulk %'")
        box.logout()
        fresh = imap(port)  # a new session: the old one's view of the flags is not refreshed
        unseen = len(fresh.search(None, "UNSEEN")[1][0].split())
        fresh.logout()
        print(f"{args.mails:,} mails, fetcher SIGKILLed {kills} times, {took:.0f} s ({args.mails / took:.0f} mails/s): "
              f"lost {lost}, duplicated {doubled}, tickets {tickets:,}, still unseen on the server {unseen}")
    finally:
        stop_dovecot(dovecot, root)
        await pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
