"""The production shape on one machine (deploy/cluster.sh: 2 web processes, 3 job workers, 2 schedulers on
PostgreSQL and Redis), started briefly: a person written through the API of one web process is read through the
other, the write's webhook job runs on a worker process and reaches a receiver, and stop leaves no process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from core.testing import PG_ADMIN_URL, free_port, pg_admin

ROOT = Path(__file__).parents[1]
REDIS_URL = "redis://127.0.0.1:6379/13"


def _receiver() -> tuple[ThreadingHTTPServer, list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


async def _token(url: str) -> str:
    from core import db
    from core.security.models import User
    from core.security.sessions import create_token

    db.configure(url)
    user = await User.select(User.id).where(User.login == "root").first()
    return await create_token(int(user["id"]), "cluster", roles=["admin"])


def test_the_cluster_serves_writes_and_runs_jobs_on_its_workers(tmp_path: Path) -> None:
    import redis

    name = f"crm_cluster_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    redis.Redis.from_url(REDIS_URL).flushdb()
    ports = [free_port(), free_port()]
    server, got = _receiver()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATABASE_URL": url,
        "CRM_REDIS_URL": REDIS_URL,
        "CRM_DATA_DIR": str(tmp_path / "data"),
        "CRM_SECRET_KEY": "cluster-test",
        "CRM_NEW_PASSWORD": "Correct-Horse-42!",
        "CRM_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
        "CLUSTER_DIR": str(tmp_path / "cluster"),
        "CLUSTER_WEB_PORTS": " ".join(map(str, ports)),
        "CRM": str(Path(sys.executable).parent / "crm"),
    }
    crm = env["CRM"]
    script = str(ROOT / "deploy" / "cluster.sh")
    pids: list[int] = []
    try:
        for cmd in (["init"], ["addons", "install", "crm_contacts"], ["users", "create", "root", "--role", "admin"]):
            done = subprocess.run([crm, *cmd], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr[-2000:]
        started = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stderr[-3000:]
        assert "3 workers, 2 schedulers" in started.stdout
        status = subprocess.run(["bash", script, "status"], env=env, capture_output=True, text=True, timeout=30)
        assert status.returncode == 0 and status.stdout.count("running") == 7, status.stdout
        pids = [int(line.rsplit("pid ", 1)[1].rstrip(")")) for line in status.stdout.splitlines()]
        headers = {"Authorization": f"Bearer {asyncio.run(_token(url))}"}
        first, second = (f"http://127.0.0.1:{p}" for p in ports)
        hook = httpx.post(
            f"{first}/api/admin/webhooks",
            headers=headers,
            timeout=30,
            json={
                "name": "sink",
                "url": f"http://127.0.0.1:{server.server_address[1]}/in",
                "events": ["crm_contacts.person.created"],
            },
        )
        assert hook.status_code == 201, hook.text
        made = httpx.post(
            f"{first}/api/contacts/people",
            headers=headers,
            timeout=30,
            json={"name": "集群 测试", "phone": "13800138000"},
        )
        assert made.status_code == 201, made.text
        person_id = made.json()["id"]
        read = httpx.get(f"{second}/api/contacts/people/{person_id}", headers=headers, timeout=30)
        assert read.status_code == 200 and read.json()["name"] == "集群 测试"
        deadline = time.monotonic() + 60  # the other web process's subscription cache is at most 2 s old
        while not got and time.monotonic() < deadline:
            time.sleep(0.2)
        assert got and got[0]["record_id"] == person_id and got[0]["event"] == "crm_contacts.person.created"
        logs = "".join(p.read_text() for p in (tmp_path / "cluster").glob("worker-*.log"))
        assert "Traceback" not in logs, logs[-3000:]
    finally:
        stopped = subprocess.run(["bash", script, "stop"], env=env, capture_output=True, text=True, timeout=60)
        server.shutdown()
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not list((tmp_path / "cluster").glob("*.pid"))
    for pid in pids:  # every process the script started is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"process {pid} still running after stop")
