"""Requests/s of the JSON API against a bare Starlette + asyncpg app on the same table, in the same run.

Read: ``GET /api/contacts/people?limit=50`` with a bearer token (an admin's: every person visible) through
``crm serve --workers 2`` on PostgreSQL with 20k people, against a bare app (``bare_app`` below, uvicorn with 2
workers, an asyncpg pool) returning the same 50 rows (same columns, same order: the bench checks the ids).
Write: ``POST /api/contacts/people`` (standardization of the phone, the audit row, the outbox…) against a bare
``INSERT … RETURNING id`` into the same table. Runs alternate (CRM, bare, CRM, bare…) with ``wrk`` (Debian's;
an httpx load loop when it is missing), and the median of each side is reported with the ratio (target ≥ 0.5).

The CRM runs in its default shape (no ``CRM_REDIS_URL``: jobs in-process, which now pools too); request
logging is off on both sides.

    .venv/bin/python bench/api_throughput.py [--people 20000] [--rounds 3] [--seconds 8] [--connections 16]
        [--keep] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DB = "crm_bench_api"
PASSWORD = "Correct-Horse-42!"
TARGET = 0.5
HERE = Path(__file__).resolve().parent
COLUMNS = ("id", "name", "given_name", "family_name", "organization", "job_title", "email", "phone",
           "phone_original", "language", "province", "city", "industry", "stage", "source", "birth_date", "custom",
           "owner", "team", "merged_into", "is_archived", "version", "created_at", "updated_at")


# --------------------------------------------------------------------------------------------------------------
# The bare app: what the same answer costs with nothing but Starlette and an asyncpg pool
# --------------------------------------------------------------------------------------------------------------

def bare_app() -> Any:
    """``uvicorn --factory api_throughput:bare_app`` (``BARE_DSN`` names the database)."""
    import asyncpg
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    pool: dict[str, Any] = {}
    listing = (f"SELECT {', '.join(COLUMNS)} FROM crm_contacts_person WHERE NOT is_archived "
               "AND merged_into IS NULL ORDER BY id LIMIT $1")

    def plain(value: Any) -> Any:
        return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value

    async def people(request: Request) -> JSONResponse:
        limit = int(request.query_params.get("limit", "50"))
        rows = await pool["pool"].fetch(listing, limit)
        return JSONResponse({"items": [{k: plain(v) for k, v in r.items()} for r in rows], "next": None})

    async def create(request: Request) -> JSONResponse:
        body = await request.json()
        now = dt.datetime.now(dt.UTC)
        row = await pool["pool"].fetchrow(
            "INSERT INTO crm_contacts_person (name, phone, search_text, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $4) RETURNING id", body["name"], body.get("phone", ""),
            body["name"].lower(), now)
        return JSONResponse({"id": row["id"], "name": body["name"]}, status_code=201)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        pool["pool"] = await asyncpg.create_pool(os.environ["BARE_DSN"], min_size=2, max_size=10)
        yield
        await pool["pool"].close()

    return Starlette(routes=[Route("/people", people), Route("/people", create, methods=["POST"])],
                     lifespan=lifespan)


# --------------------------------------------------------------------------------------------------------------
# Setup
# --------------------------------------------------------------------------------------------------------------

async def prepare(pg: str, people: int, keep: bool) -> tuple[str, str]:
    """The bench database (crm_contacts, 20k people, an admin with an API token); returns (url, token)."""
    import asyncpg
    from contacts_list import load_people, seed_users

    from core import db, lifecycle
    from core.discovery import discover
    from core.security import sessions
    from core.security.models import User
    from core.security.users import create_user
    from core.testing import pg_admin

    url = pg.rsplit("/", 1)[0] + "/" + DB
    try:
        conn = await asyncpg.connect(url)
        count = await conn.fetchval("SELECT count(*) FROM crm_contacts_person WHERE source = 'bench'")
        await conn.close()
    except (asyncpg.InvalidCatalogNameError, asyncpg.UndefinedTableError):
        count = -1
    reuse = keep and count == people
    if not reuse:
        await pg_admin(url=pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        await pg_admin(url=pg, sql=f'CREATE DATABASE "{DB}"')
    db.configure(url)
    await lifecycle.ensure_kernel()
    await lifecycle.install(["crm_contacts"], discover())
    await lifecycle.upgrade(["crm_contacts"], discover())
    if not reuse:
        reps, team_of = await seed_users()
        took = await load_people(url, people, reps, team_of)
        print(f"loaded {people:,} people in {took:.0f} s")
    admin = await User.select(User.id).where(User.login == "bench_admin").first()
    admin_id = admin["id"] if admin else await create_user("bench_admin", "Bench Admin", PASSWORD, roles=["admin"])
    token = await sessions.create_token(admin_id, f"bench {time.time():.0f}", roles=["admin"], days=1)
    return url, token


@contextlib.contextmanager
def server(argv: list[str], env: dict[str, str], health: str, log: Path) -> Iterator[str]:
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        proc = subprocess.Popen([*argv, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=HERE.parent)
        try:
            deadline = time.monotonic() + 90
            while True:
                assert proc.poll() is None, f"{argv[0]} exited: {log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{argv} not up in 90 s"
                try:
                    if httpx.get(url + health, timeout=1).status_code < 500:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            time.sleep(1.5)  # the second worker
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------------------------------------
# Load
# --------------------------------------------------------------------------------------------------------------

WRITE_LUA = """
local n = 0
local tag = tostring(math.random(1, 1000000000))
request = function()
  n = n + 1
  local body = string.format('{"name": "Bench %s-%d", "phone": "138%08d"}', tag, n, (tonumber(tag) + n) %% 100000000)
  return wrk.format("POST", nil, nil, body)
end
"""


def load(url: str, headers: dict[str, str], seconds: float, connections: int, body_lua: Path | None) -> tuple[
        float, int]:
    """(requests/s, answers that were not 2xx)."""
    if shutil.which("wrk"):
        argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:.0f}s"]
        for k, v in headers.items():
            argv += ["-H", f"{k}: {v}"]
        if body_lua:
            argv += ["-s", str(body_lua)]
        out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        return rps, int(bad.group(1)) if bad else 0
    return asyncio.run(_httpx_load(url, headers, seconds, connections, body_lua is not None))


async def _httpx_load(url: str, headers: dict[str, str], seconds: float, connections: int, write: bool) -> tuple[
        float, int]:
    import httpx

    done, bad, n = 0, 0, 0
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient, me: int) -> None:
        nonlocal done, bad, n
        while time.perf_counter() < deadline:
            n += 1
            if write:
                r = await client.post(url, json={"name": f"Bench h{me}-{n}", "phone": f"139{n:08d}"})
            else:
                r = await client.get(url)
            done += 1
            bad += r.status_code >= 300

    started = time.perf_counter()
    async with httpx.AsyncClient(headers={**headers, "content-type": "application/json"},
                                 limits=httpx.Limits(max_connections=connections)) as client:
        await asyncio.gather(*(worker(client, i) for i in range(connections)))
    return done / (time.perf_counter() - started), bad


def compare(title: str, runs: dict[str, tuple[str, dict[str, str], Path | None]], rounds: int, seconds: float,
            connections: int) -> float:
    got: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name, (url, headers, lua) in runs.items():
            rps, bad = load(url, headers, seconds, connections, lua)
            assert bad == 0, f"{name}: {bad} answers were not 2xx"
            got[name].append(rps)
            print(f"  round {r + 1} {name:5s} {rps:8.1f} req/s", flush=True)
    crm, bare = (statistics.median(got[n]) for n in runs)
    ratio = crm / bare
    print(f"{title}: CRM {crm:.0f} req/s, bare {bare:.0f} req/s (medians of {rounds}), ratio {ratio:.2f} "
          f"({'meets' if ratio >= TARGET else 'MISSES'} the {TARGET} target)", flush=True)
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    import httpx

    from core.testing import pg_admin

    url, token = asyncio.run(prepare(args.pg, args.people, args.keep))
    print(f"load: {'wrk' if shutil.which('wrk') else 'httpx loop'}, {args.connections} connections, "
          f"{args.seconds:.0f} s per run; machine load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    data = Path(tempfile.mkdtemp(prefix="crm_bench_api_"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "BARE_"))}
    crm_env = base_env | {"CRM_DATA_DIR": str(data), "CRM_DATABASE_URL": url, "CRM_LOG_LEVEL": "warning",
                          "CRM_SECRET_KEY": "bench-secret-key-bench-secret-key"}
    bare_env = base_env | {"BARE_DSN": url}
    bin_dir = Path(sys.executable).parent
    auth = {"Authorization": f"Bearer {token}"}
    lua = data / "write.lua"
    lua.write_text(WRITE_LUA.replace("%%", "%"))
    try:
        with server([str(bin_dir / "crm"), "serve", "--workers", "2"], crm_env, "/healthz", data / "crm.log") as crm, \
                server([str(bin_dir / "uvicorn"), "--app-dir", str(HERE), "--factory", "api_throughput:bare_app",
                        "--workers", "2", "--log-level", "warning", "--no-access-log"], bare_env, "/people?limit=1",
                       data / "bare.log") as bare:
            crm_list, bare_list = f"{crm}/api/contacts/people?limit=50", f"{bare}/people?limit=50"
            mine = httpx.get(crm_list, headers=auth).json()["items"]
            theirs = httpx.get(bare_list).json()["items"]
            same = [p["id"] for p in mine] == [p["id"] for p in theirs] and len(mine) == 50
            print(f"same 50 rows on both sides: {same}; CRM body {len(json.dumps(mine))} B, bare "
                  f"{len(json.dumps(theirs))} B", flush=True)
            assert same, "the two apps answer different rows"
            print(f"read: GET 50 people of {args.people:,}, bearer token, 2 workers each", flush=True)
            compare("read", {"crm": (crm_list, auth, None), "bare": (bare_list, {}, None)}, args.rounds, args.seconds,
                    args.connections)
            json_header = {"Content-Type": "application/json"}
            print("write: POST one person (CRM: standardized phone, audit row; bare: one INSERT)", flush=True)
            compare("write", {"crm": (f"{crm}/api/contacts/people", auth | json_header, lua),
                              "bare": (f"{bare}/people", json_header, lua)}, args.rounds, args.seconds,
                    args.connections)
    finally:
        shutil.rmtree(data, ignore_errors=True)
        if not args.keep:
            asyncio.run(pg_admin(url=args.pg, sql=f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)'))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
