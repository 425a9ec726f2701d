"""Soak: N minutes of mixed load against the production shape (deploy/cluster.sh: 2 web processes, 3 job
workers, 2 schedulers on PostgreSQL and a Redis of its own) while job workers and web processes are SIGKILLed
and Redis (no persistence: every queued message is lost) is restarted; then every effect is counted outside the
CRM: quote e-mails at a local SMTP sink (aiosmtpd), sales in a real trytond.

    .venv/bin/python bench/soak.py --minutes 10            # the full run: a 50k-row contacts import
    .venv/bin/python bench/soak.py --minutes 1 --import-rows 2000

Load (4 concurrent clients, picked at random per request, bearer token on /api, a session on pages):
api_read ``GET /api/contacts/people?limit=50``, api_write ``POST /api/contacts/people``, page (people list,
quotes list, a person, the dashboard), quote (create a deal and a quote, send it — the e-mail job renders the
PDF and mails it —, fetch its PDF, accept it — the order is pushed to Tryton by a job). A request that finds its
web process dead goes to the other one with the same Idempotency-Key (what a proxy does); a refused connection
is counted, never taken for a server error. Faults: every ``--fault-every`` seconds the next of worker kill,
web kill, worker kill, Redis restart; the killed process is started again at once with cluster.sh's command.
Each fault's window runs from the fault until the process answers again (a web's /healthz, a worker's
start-up, Redis's PING) plus ``--grace`` seconds; server errors (5xx) outside every window must be 0.

Afterwards the run waits (``--drain`` seconds at most) until every job is done, then counts: jobs lost (a sent
quote without its mail at the sink, an accepted quote without its sale in Tryton, an import short of rows, an
outbox row not done) and jobs run twice with an external effect (a quote mailed twice, counted by the message's
Message-ID and by quote number; a sale twice in Tryton). Memory: RSS of every cluster process at the end of the
warm-up and at the end; bound: a process that was never killed grows by at most ``--rss-bound-mb`` (150) MB.

Also used by tests/test_soak.py (a short run) through ``run()``.

2026-12-02, ``--minutes 10`` with a 50k-row import at load average 5-8: 11,703 requests, 12 worker kills,
6 web kills, 6 Redis restarts, 0 server errors, 858 quotes = 858 mails = 858 sales, 0 lost, 0 twice.
Earlier ``--minutes 4`` with a 50k-row import, 2 cores loaded by other agents (load average 5-15): 2,389
requests, 5 worker kills, 2 web kills, 2 Redis restarts, 0 server errors, 167 quotes = 167 mails = 167 sales,
0 lost, 0 twice; the full figures are in docs/operations.md ("Soak").
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CRM = str(Path(sys.executable).parent / "crm")
CLUSTER = str(ROOT / "deploy" / "cluster.sh")
FAULTS = ("worker", "web", "worker", "redis")
LINE = {"code": "P-001", "description": "Widget", "quantity": "1", "unit_price": "100", "tax_rate": "0.13"}


@dataclass
class Figures:
    minutes: float
    import_rows: int
    requests: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_errors: list[tuple[float, str, int]] = field(default_factory=list)  # (t, what, status)
    client_errors: Counter[int] = field(default_factory=Counter)  # 4xx by status (a conflict, a replay)
    refused: list[tuple[float, str]] = field(default_factory=list)  # (t, port): the web process was dead
    faults: list[tuple[str, float, float]] = field(default_factory=list)  # (what, start, end of window)
    quotes_sent: int = 0
    orders: int = 0
    mails: int = 0
    mails_distinct: int = 0
    duplicate_mails: int = 0
    redelivered: int = 0
    sales_twice: int = 0
    lost: list[str] = field(default_factory=list)
    rss_start: dict[str, int] = field(default_factory=dict)  # kB
    rss_end: dict[str, int] = field(default_factory=dict)
    restarted: set[str] = field(default_factory=set)
    rss_bound_mb: int = 150
    import_seconds: float = 0.0
    drain_seconds: float = 0.0
    seconds: float = 0.0
    setup_seconds: float = 0.0
    load_started: float = 0.0

    def outside_windows(self) -> list[tuple[float, str, int]]:
        return [e for e in self.server_errors if not any(a <= e[0] <= b for _, a, b in self.faults)]

    def rss_problems(self) -> list[str]:
        return [
            f"{name}: {self.rss_start[name] // 1024} -> {self.rss_end[name] // 1024} MB"
            for name in self.rss_start
            if name in self.rss_end
            and name not in self.restarted
            and self.rss_end[name] - self.rss_start[name] > self.rss_bound_mb * 1024
        ]

    def report(self) -> str:
        t0 = self.load_started
        out = [
            f"soak: {self.minutes:g} min of load, {sum(self.requests.values())} requests, "
            f"{self.seconds:.0f} s wall (setup {self.setup_seconds:.0f} s; "
            f"import {self.import_rows} rows in {self.import_seconds:.0f} s, "
            f"drain {self.drain_seconds:.0f} s)"
        ]
        for kind in sorted(self.latencies):
            xs = sorted(self.latencies[kind])
            q = statistics.quantiles(xs, n=100, method="inclusive") if len(xs) > 1 else xs * 99
            out.append(
                f"  {kind:<12} n={len(xs):>6}  p50={q[49] * 1000:7.0f} ms  p95={q[94] * 1000:7.0f} ms  "
                f"p99={q[98] * 1000:7.0f} ms"
            )
        out.append("  faults: " + ", ".join(f"{w} at {a - t0:.0f}s (window {b - a:.1f}s)" for w, a, b in self.faults))
        counts = Counter(w.split(":")[0] for w, _, _ in self.faults)
        out.append(f"  worker_kills={counts['worker']} web_kills={counts['web']} redis_restarts={counts['redis']}")
        out.append(
            f"  server errors: {len(self.server_errors)} in all, {len(self.outside_windows())} outside the "
            f"fault windows; refused connections (dead web process, retried on the other): "
            f"{len(self.refused)}; 4xx: {dict(self.client_errors)}"
        )
        out.append(
            f"  quotes sent={self.quotes_sent} mails at the sink={self.mails} (distinct Message-IDs "
            f"{self.mails_distinct}) orders={self.orders}"
        )
        out.append(
            f"  jobs lost={len(self.lost)}  jobs run twice with an external effect: "
            f"mails={self.duplicate_mails} (of which the same Message-ID again: {self.redelivered}) "
            f"sales={self.sales_twice}"
        )
        for problem in self.lost[:20]:
            out.append(f"    lost: {problem}")
        out.append(f"  memory (RSS MB, start -> end; bound +{self.rss_bound_mb} MB for a process never killed):")
        for name in sorted(self.rss_start):
            mark = " (restarted)" if name in self.restarted else ""
            out.append(
                f"    {name:<14} {self.rss_start[name] / 1024:6.0f} -> {self.rss_end.get(name, 0) / 1024:6.0f}{mark}"
            )
        out.append(f"  memory over bound: {self.rss_problems() or 'none'}")
        return "\n".join(out)


class Sink:
    """A local SMTP server keeping every message (aiosmtpd, in a thread)."""

    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.messages.append(message_from_bytes(envelope.original_content or envelope.content))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_rss(pid: int) -> int:
    """RSS of a process and its children (``crm serve`` runs uvicorn's worker as a child)."""
    total = _rss_kb(pid)
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        kids = []
    return total + sum(_tree_rss(int(k)) for k in kids)


class Cluster:
    def __init__(self, env: dict[str, str], cdir: Path) -> None:
        self.env, self.dir = env, cdir

    def sh(self, cmd: str, timeout: float = 240) -> str:
        done = subprocess.run(["bash", CLUSTER, cmd], env=self.env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0 and cmd != "status":
            raise RuntimeError(f"cluster.sh {cmd}: {done.stdout[-1000:]} {done.stderr[-3000:]}")
        return done.stdout

    def pids(self) -> dict[str, int]:
        return {p.stem: int(p.read_text().strip()) for p in self.dir.glob("*.pid")}

    def relaunch(self, name: str) -> None:
        """The command cluster.sh starts ``name`` with; its pid file updated so ``stop`` finds it."""
        args = (
            ["serve", "--host", "127.0.0.1", "--port", name.split("-")[1]]
            if name.startswith("web-")
            else ["worker", "--threads", "4"]
        )
        log = open(self.dir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen([CRM, *args], env=self.env, stdout=log, stderr=log, start_new_session=True)
        log.close()
        (self.dir / f"{name}.pid").write_text(f"{proc.pid}\n")

    def kill(self, name: str) -> None:
        pid = self.pids()[name]
        try:  # its children too (uvicorn's worker process)
            kids = [int(k) for k in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            kids = []
        for p in [pid, *kids]:
            with suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)


def _crm(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([CRM, *args], env=env, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"crm {' '.join(args)} failed: {out.stderr[-2000:]}")
    return out.stdout


def _import_csv(rows: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["name", "email", "phone", "city"])
    for i in range(rows):
        w.writerow([f"Soak Import {i}", f"soak.import{i}@example.org", f"1390{i:07d}", "Shanghai"])
    return buf.getvalue().encode()


class Load:
    def __init__(
        self,
        figures: Figures,
        ports: list[int],
        token: str,
        session: tuple[str, str],
        customers: list[int],
        started: float,
    ) -> None:
        self.f, self.ports, self.started = figures, ports, started
        self.api = {"Authorization": f"Bearer {token}"}
        self.csrf = session[1]
        self.customers = customers
        self.quotes: dict[int, str] = {}  # id -> number
        self.orders: dict[int, int] = {}  # quote id -> order id
        self.rng = random.Random(7)
        self.client = httpx.AsyncClient(timeout=120)
        self.pages = httpx.AsyncClient(timeout=120, cookies={"crm_session": session[0]})
        self.rr = 0

    async def call(
        self, kind: str, method: str, path: str, *, page: bool = False, record: bool = True, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if page:
            headers["X-CSRF-Token"] = self.csrf
        else:
            headers.update(self.api)
        if method != "GET" and not page:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        for attempt in range(40):
            self.rr += 1
            port = self.ports[(self.rr + attempt) % len(self.ports)]
            t0 = time.monotonic()
            try:
                r = await (self.pages if page else self.client).request(
                    method, f"http://127.0.0.1:{port}{path}", headers=headers, **kw
                )
            except httpx.TransportError:  # the process is dead (or died mid-answer): the other one, same key
                self.f.refused.append((time.monotonic(), str(port)))
                await asyncio.sleep(0.25)
                continue
            took = time.monotonic() - t0
            if record:
                self.f.requests[kind] += 1
                self.f.latencies[kind].append(took)
            if r.status_code >= 500:
                self.f.server_errors.append((t0, f"{method} {path}", r.status_code))
            elif r.status_code >= 400:
                self.f.client_errors[r.status_code] += 1
            return r
        raise RuntimeError(f"{method} {path}: no web process answered")

    async def one(self) -> None:
        kind = self.rng.choices(["api_read", "api_write", "page", "quote"], [45, 20, 25, 10])[0]
        if kind == "api_read":
            await self.call(kind, "GET", "/api/contacts/people?limit=50")
        elif kind == "api_write":
            n = self.rng.randrange(10**9)
            await self.call(
                kind, "POST", "/api/contacts/people", json={"name": f"Soak Person {n}", "phone": f"1380{n % 10**7:07d}"}
            )
        elif kind == "page":
            path = self.rng.choice(
                ["/contacts/people", "/sales/quotes", "/", f"/contacts/people/{self.rng.choice(self.customers)}"]
            )
            await self.call("page", "GET", path, page=True)
        else:
            await self.quote_flow()

    async def quote_flow(self) -> None:
        person = self.rng.choice(self.customers)
        r = await self.call(
            "quote",
            "POST",
            "/api/sales/opportunities",
            json={"name": f"Soak deal {uuid.uuid4().hex[:6]}", "person": person, "currency": "EUR"},
        )
        if r.status_code != 201:
            return
        r = await self.call(
            "quote",
            "POST",
            "/api/sales/quotes",
            json={"opportunity": r.json()["id"], "currency": "EUR", "language": "en", "lines": [LINE]},
        )
        if r.status_code != 201:
            return
        qid = int(r.json()["id"])
        r = await self.call("quote", "POST", f"/api/sales/quotes/{qid}/send", json={})
        if r.status_code != 200:
            return
        got = await self.call("quote", "GET", f"/api/sales/quotes/{qid}", record=False)
        self.quotes[qid] = got.json().get("number", "") if got.status_code == 200 else ""
        await self.call("pdf", "GET", f"/sales/quotes/{qid}/pdf", page=True)
        r = await self.call("quote", "POST", f"/api/sales/quotes/{qid}/accept", json={"name": "Soak Buyer"})
        if r.status_code == 200:
            self.orders[qid] = int(r.json()["order_id"])

    async def clients(self, until: float, n: int = 4, stop: asyncio.Event | None = None) -> None:
        async def loop() -> None:
            while time.monotonic() < until or (stop is not None and not stop.is_set()):
                try:
                    await self.one()
                except RuntimeError as exc:
                    self.f.lost.append(f"client gave up: {exc}")

        await asyncio.gather(*(loop() for _ in range(n)))

    async def run_import(self, rows: int) -> int:
        """Upload and start the import through its pages (a session and its CSRF token); returns the batch id."""
        files = {"file": ("soak.csv", _import_csv(rows), "text/csv")}
        r = await self.call("import", "POST", "/contacts/imports", page=True, files=files, follow_redirects=False)
        if r.status_code != 303:
            raise RuntimeError(f"upload: {r.status_code} {r.text[:300]}")
        batch = int(r.headers["location"].rstrip("/").rsplit("/", 1)[1])
        form = {"map_0": "name", "map_1": "email", "map_2": "phone", "map_3": "city", "mode": "create"}
        r = await self.call(
            "import", "POST", f"/contacts/imports/{batch}/start", page=True, data=form, follow_redirects=False
        )
        if r.status_code != 303:
            raise RuntimeError(f"start: {r.status_code} {r.text[:300]}")
        return batch


async def _setup_in_db(env: dict[str, str], customers: int) -> tuple[str, tuple[str, str], list[int]]:
    from crm_contacts.api import add_address, find_or_create_person

    from core.runtime import boot
    from core.security.models import User
    from core.security.sessions import create_token, open_session
    from core.settings import Settings

    await boot(
        Settings(
            data_dir=Path(env["CRM_DATA_DIR"]),
            database_url=env["CRM_DATABASE_URL"],
            redis_url=env["CRM_REDIS_URL"],
            secret_key=env["CRM_SECRET_KEY"],
        )
    )
    user = await User.select(User.id).where(User.login == "root").first()
    token = await create_token(int(user["id"]), "soak", roles=["admin"])
    session = await open_session(int(user["id"]))
    people = []
    for i in range(customers):
        ref, _ = await find_or_create_person(name=f"Soak Customer {i}", email=f"customer{i}@example.org")
        await add_address(ref.id, line1=f"{i} Century Ave", city="Shanghai", country="CN")
        people.append(ref.id)
    return token, session, people


async def _fault(
    kind: str,
    cluster: Cluster,
    restart_redis: Any,
    figures: Figures,
    ports: list[int],
    rng: random.Random,
    grace: float,
) -> None:
    start = time.monotonic()
    if kind == "redis":
        await asyncio.to_thread(restart_redis)
        name = "redis"
    else:
        names = sorted(n for n in cluster.pids() if n.startswith(f"{kind}-"))
        name = rng.choice(names)
        cluster.kill(name)
        figures.restarted.add(name)
        await asyncio.sleep(0.5)
        cluster.relaunch(name)
        if kind == "web":
            port = name.split("-")[1]
            async with httpx.AsyncClient(timeout=2) as c:
                for _ in range(600):
                    try:
                        if (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.2)
        else:  # a worker is up when its log says so; give it the same few seconds a web process takes
            await asyncio.sleep(5)
    figures.faults.append((f"{kind}:{name}" if kind != "redis" else "redis", start, time.monotonic() + grace))


async def _drained(ids: list[int], batch: int, rows: int) -> tuple[bool, str]:
    from crm_contacts.models import ImportBatch
    from crm_sales.models import Quote
    from erp_bridge.models import Binding

    from core.models import Outbox

    open_jobs = await Outbox.count().where(Outbox.state.is_in(["pending", "running"]))
    b = await ImportBatch.select(ImportBatch.status).where(ImportBatch.id == batch).first()
    mailing = await Quote.count().where(Quote.email_state == "sending")
    synced = await Binding.count().where(Binding.local_id.is_in(ids) & (Binding.state == "synced")) if ids else 0
    state = (
        f"outbox open={open_jobs} import={b['status'] if b else None} mails sending={mailing} "
        f"orders synced={synced}/{len(ids)}"
    )
    return open_jobs == 0 and b is not None and b["status"] == "done" and mailing == 0 and synced == len(ids), state


async def _count_effects(figures: Figures, load: Load, sink: Sink, conn: Any, batch: int, rows: int) -> None:
    from crm_contacts.models import ImportBatch, Person
    from erp_bridge.backends.tryton import TrytonBackend

    from core.models import Outbox

    figures.quotes_sent, figures.orders = len(load.quotes), len(load.orders)
    figures.mails = len(sink.messages)
    # the quote a mail belongs to, from its Message-ID (<quote-ID-digest@…>), else its subject's number
    numbers = {number: qid for qid, number in load.quotes.items() if number}
    per_quote: dict[int, list[str]] = defaultdict(list)
    for m in sink.messages:
        mid, subject = str(m.get("Message-ID") or ""), str(m.get("Subject") or "")
        qid = (
            int(mid.split("-")[1])
            if mid.startswith("<quote-")
            else next((q for n, q in numbers.items() if n in subject), -1)
        )
        per_quote[qid].append(mid)
    figures.mails_distinct = len({mid for mids in per_quote.values() for mid in mids if mid})
    figures.duplicate_mails = sum(len(mids) - 1 for mids in per_quote.values() if len(mids) > 1)
    figures.redelivered = sum(len(mids) - len(set(mids)) for mids in per_quote.values())
    for qid, number in load.quotes.items():
        if not per_quote.get(qid):
            figures.lost.append(f"quote {qid} ({number}): sent, no mail at the sink")
    backend = TrytonBackend(conn.url, conn.database, conn.username, conn.password, timeout=120)
    try:
        sales = backend.call(
            "model.sale.sale.search_read", [("reference", "like", "CRM-SO-%")], 0, None, None, ["reference"]
        )
    finally:
        backend.close()
    by_ref = Counter(s["reference"] for s in sales)
    figures.sales_twice = sum(c - 1 for c in by_ref.values() if c > 1)
    for oid in load.orders.values():
        if by_ref.get(f"CRM-SO-{oid}", 0) == 0:
            figures.lost.append(f"order {oid}: accepted, no sale in Tryton")
    b = await ImportBatch.select().where(ImportBatch.id == batch).first()
    made = await Person.count().where(Person.email.like("soak.import%@example.org"))
    if b is None or b["status"] != "done" or made != rows:
        figures.lost.append(f"import {batch}: {b and b['status']}, {made} of {rows} people")
    for row in await Outbox.select(
        Outbox.id,
        Outbox.actor,
        Outbox.state,
        Outbox.last_error,
        Outbox.attempts,
        Outbox.lease_until,
        Outbox.dispatched_at,
        Outbox.created_at,
    ).where(Outbox.state != "done"):
        figures.lost.append(
            f"outbox #{row['id']} {row['actor']} {row['state']} attempts={row['attempts']} "
            f"created={row['created_at']:%H:%M:%S} dispatched={row['dispatched_at']} "
            f"lease={row['lease_until']} (now {time.strftime('%H:%M:%S', time.gmtime())}): "
            f"{row['last_error'][:200]}"
        )


def run(
    minutes: float,
    *,
    import_rows: int,
    workdir: Path,
    fault_every: float = 20.0,
    grace: float = 3.0,
    drain: float = 420.0,
    customers: int = 20,
    rss_bound_mb: int = 150,
    clients: int = 4,
    warmup: float = 10.0,
    sequence: tuple[str, ...] = FAULTS,
    keep_logs: Path | None = None,
) -> Figures:
    """The whole soak; never raises for a lost or doubled effect: they land in the figures."""
    return asyncio.run(
        _run(
            minutes,
            import_rows,
            workdir,
            fault_every,
            grace,
            drain,
            customers,
            rss_bound_mb,
            clients,
            warmup,
            sequence,
            keep_logs,
        )
    )


async def _run(
    minutes: float,
    import_rows: int,
    workdir: Path,
    fault_every: float,
    grace: float,
    drain: float,
    customers: int,
    rss_bound_mb: int,
    clients: int,
    warmup: float,
    sequence: tuple[str, ...],
    keep_logs: Path | None,
) -> Figures:
    from erp_bridge.testing.fault import redis_server
    from erp_bridge.testing.tryton_server import build_database, free_port, running_server, tax_ids

    from core.testing import PG_ADMIN_URL, pg_admin

    figures = Figures(minutes=minutes, import_rows=import_rows, rss_bound_mb=rss_bound_mb)
    began = time.monotonic()
    name = f"crm_soak_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    ports = [free_port(), free_port()]
    cluster: Cluster | None = None
    try:
        with ExitStack() as stack:
            conn = stack.enter_context(running_server(build_database(), workdir / "tryton"))
            redis_url, restart_redis = stack.enter_context(redis_server(workdir))
            sink = stack.enter_context(Sink(free_port()))
            env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
                "CRM_DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name,
                "CRM_REDIS_URL": redis_url,
                "CRM_DATA_DIR": str(workdir / "data"),
                "CRM_SECRET_KEY": "soak",
                "CRM_NEW_PASSWORD": "Correct-Horse-42!",
                "CRM_ERP_PASSWORD": conn.password,
                "CRM_SMTP_HOST": "127.0.0.1",
                "CRM_SMTP_PORT": str(sink.controller.port),
                "CLUSTER_DIR": str(workdir / "cluster"),
                "CLUSTER_WEB_PORTS": " ".join(map(str, ports)),
                "CRM": CRM,
            }
            _crm(env, "init")
            _crm(env, "addons", "install", "crm_contacts", "crm_sales", "erp_bridge")
            _crm(env, "users", "create", "root", "--role", "admin")
            _crm(
                env,
                "erp",
                "configure",
                "main",
                "--kind",
                "tryton",
                "--url",
                conn.url,
                "--database",
                conn.database,
                "--username",
                conn.username,
            )
            _crm(env, "erp", "taxes", "map", "0.13", tax_ids(conn)[Decimal("0.13")])
            token, session, people = await _setup_in_db(env, customers)
            cluster = Cluster(env, workdir / "cluster")
            cluster.sh("start")
            started = time.monotonic()
            figures.setup_seconds = started - began
            load = Load(figures, ports, token, session, people, started)
            await load.clients(started + warmup, clients)  # warm-up: not the start figures
            figures.requests.clear()
            figures.latencies.clear()
            figures.rss_start = {n: _tree_rss(p) for n, p in cluster.pids().items()}
            import_started = time.monotonic()
            batch = await load.run_import(import_rows)
            until = time.monotonic() + minutes * 60
            figures.load_started = time.monotonic()
            rng = random.Random(11)

            stop = asyncio.Event()

            async def faults() -> None:  # every fault of the sequence at least once, however short the run
                i = 0
                while i < len(sequence) or time.monotonic() + fault_every < until:
                    await asyncio.sleep(fault_every)
                    await _fault(sequence[i % len(sequence)], cluster, restart_redis, figures, ports, rng, grace)
                    i += 1
                stop.set()

            async def watch_import() -> None:
                from crm_contacts.models import ImportBatch

                while True:
                    b = await ImportBatch.select(ImportBatch.status).where(ImportBatch.id == batch).first()
                    if b and b["status"] in ("done", "failed"):
                        figures.import_seconds = time.monotonic() - import_started
                        return
                    await asyncio.sleep(1)

            watcher = asyncio.create_task(watch_import())
            await asyncio.gather(load.clients(until, clients, stop), faults())
            drain_started = time.monotonic()
            state = ""
            while time.monotonic() - drain_started < drain:
                done, state = await _drained(list(load.orders.values()), batch, import_rows)
                if done:
                    break
                await asyncio.sleep(1)
            else:
                figures.lost.append(f"not drained after {drain:.0f} s: {state}")
            figures.drain_seconds = time.monotonic() - drain_started
            watcher.cancel()
            figures.rss_end = {n: _tree_rss(p) for n, p in cluster.pids().items()}
            await _count_effects(figures, load, sink, conn, batch, import_rows)
            await load.client.aclose()
            await load.pages.aclose()
            cluster.sh("stop", timeout=90)
            cluster = None
            if figures.lost and keep_logs:  # what the processes said, for the next look
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log in (workdir / "cluster").glob("*.log"):
                    (keep_logs / log.name).write_bytes(log.read_bytes())
    finally:
        if cluster is not None:
            cluster.sh("stop", timeout=90)
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    figures.seconds = time.monotonic() - began
    return figures


def main() -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--import-rows", type=int, default=None, help="default 50,000 (5,000 under 5 minutes)")
    parser.add_argument("--fault-every", type=float, default=20.0)
    parser.add_argument("--grace", type=float, default=3.0)
    parser.add_argument("--drain", type=float, default=420.0)
    parser.add_argument("--rss-bound-mb", type=int, default=150)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy the cluster's logs here on a failure")
    args = parser.parse_args()
    rows = args.import_rows if args.import_rows is not None else (50_000 if args.minutes >= 5 else 5_000)
    with tempfile.TemporaryDirectory(prefix="crm-soak-") as tmp:
        figures = run(
            args.minutes,
            import_rows=rows,
            workdir=Path(tmp),
            fault_every=args.fault_every,
            grace=args.grace,
            drain=args.drain,
            rss_bound_mb=args.rss_bound_mb,
            clients=args.clients,
            keep_logs=args.keep_logs,
        )
    print(figures.report())
    bad = (
        figures.lost
        or figures.duplicate_mails
        or figures.sales_twice
        or figures.outside_windows()
        or figures.rss_problems()
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
