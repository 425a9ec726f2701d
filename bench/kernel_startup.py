"""Kernel figures: cold start of `crm serve` (process start → first 200 on /healthz) with every present addon,
and the time to install an addon into a fresh database, on SQLite and PostgreSQL.

    .venv/bin/python bench/kernel_startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

CRM = str(Path(sys.executable).parent / "crm")
PG = "postgresql://postgres@127.0.0.1:5432/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(url: str, data: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATABASE_URL": url, "CRM_DATA_DIR": data}


def pg_db() -> str:
    import asyncpg

    name = f"crm_bench_{uuid.uuid4().hex[:8]}"

    async def go() -> None:
        conn = await asyncpg.connect(PG + "postgres")
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(go())
    return PG + name


def timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([CRM, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def cold_start(env: dict[str, str]) -> float:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([CRM, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                time.sleep(0.02)
            if time.perf_counter() - started > 60:
                raise SystemExit("server did not start in 60 s")
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from core.discovery import discover

    present = sorted(discover().addons)
    print(f"present addons: {', '.join(present)}")
    for backend in ("sqlite", "postgres"):
        installs, starts, inits = [], [], []
        for _ in range(args.runs):
            data = tempfile.mkdtemp()
            url = f"sqlite:///{data}/crm.sqlite3" if backend == "sqlite" else pg_db()
            env = env_for(url, data)
            inits.append(timed(["init"], env))
            installs.append(timed(["addons", "install", *present], env))
            starts.append(cold_start(env))
        print(f"{backend:9} crm init {statistics.median(inits):.2f}s | install all ({len(present)}) "
              f"{statistics.median(installs):.2f}s (incl. ~interpreter start) | cold start of `crm serve` "
              f"to first 200: p50 {statistics.median(starts):.2f}s max {max(starts):.2f}s")


if __name__ == "__main__":
    main()
