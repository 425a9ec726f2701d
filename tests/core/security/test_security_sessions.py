"""Sessions: cookie flags, logout and deactivation revoke at once, idle and absolute timeouts, password rules,
generic login errors, and login throttling kept in the database (shown across two real uvicorn processes)."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from security_helpers import PASSWORD, audit_rows, sign_in

from core.testing import csrf_of

ROOT = Path(__file__).resolve().parents[3]


async def _app_with(crm_boot, found, **settings):
    from core.app import create_app

    runtime = await crm_boot("crm_sectest", found=found)
    runtime.settings = runtime.settings.with_(**settings)
    app = create_app(runtime=runtime, run_jobs=False)
    scheme = "https" if runtime.settings.secure_cookies else "http"  # a Secure cookie only travels over https
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://testserver")


async def _login(client, login: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/login")
    return await client.post("/login", data={"login": login, "password": password, "csrf_token": csrf_of(page.text)})


async def test_cookie_flags_and_logout_revokes(crm_boot, found) -> None:
    from core.security.models import Session
    from core.testing import make_user

    async with await _app_with(crm_boot, found) as client:
        await make_user("amy", "tb_user")
        response = await _login(client, "amy")
        cookie = response.headers["set-cookie"]
        assert response.status_code == 303 and cookie.startswith("crm_session=")
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
        stolen = client.cookies["crm_session"]
        csrf = csrf_of((await client.get("/")).text)
        assert (await client.post("/logout", data={"csrf_token": csrf})).status_code == 303
        assert (await Session.select(Session.revoked_at).first())["revoked_at"] is not None
        replay = await client.get("/notes/", headers={"Cookie": f"crm_session={stolen}"})
        assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
        assert (await client.get("/api/testbase/notes", headers={"Cookie": f"crm_session={stolen}"})).status_code == 401
    async with await _app_with(crm_boot, found, base_url="https://crm.example.com") as client:
        response = await _login(client, "amy")
        assert "Secure" in response.headers["set-cookie"] and "HttpOnly" in response.headers["set-cookie"]
        fresh = await client.get("/login", headers={"Cookie": "x=1"})
        assert all("Secure" in c for c in fresh.headers.get_list("set-cookie"))


async def test_idle_and_absolute_timeouts_are_configurable(crm_boot, found) -> None:
    from core.security.models import Session
    from core.testing import make_user

    now = dt.datetime.now(dt.UTC)
    async with await _app_with(crm_boot, found, session_idle_minutes=5, session_absolute_hours=1) as client:
        await make_user("amy", "tb_user")

        async def age(**delta) -> int:
            await _login(client, "amy")
            await Session.update({Session.last_seen_at: now - dt.timedelta(minutes=delta.get("idle", 0)),
                                  Session.created_at: now - dt.timedelta(minutes=delta.get("total", 0))}).where(
                Session.revoked_at.is_null())
            return (await client.get("/notes/")).status_code

        assert await age(idle=4) == 200
        assert await age(idle=6) == 303          # idle timeout (5 min)
        assert await age(idle=1, total=59) == 200
        assert await age(idle=1, total=61) == 303  # absolute timeout (1 h) despite recent activity
        rows = await Session.select(Session.revoked_at).order_by(Session.id)
        assert [r["revoked_at"] is not None for r in rows] == [False, True, False, True]
        assert len(await audit_rows(action="auth_failed")) == 2


async def test_deactivation_ends_sessions_at_once(world_client) -> None:
    from core.security.models import Session

    client, world = world_client
    await sign_in(client, "amy")
    amy_cookie = client.cookies["crm_session"]
    csrf = await sign_in(client, "root")
    off = await client.post(f"/admin/users/{world.users['amy']}/active", data={"csrf_token": csrf, "active": "0"})
    assert off.status_code == 303
    assert (await client.get("/notes/", headers={"Cookie": f"crm_session={amy_cookie}"})).status_code == 303
    assert await Session.count().where((Session.user == world.users["amy"]) & Session.revoked_at.is_null()) == 0
    page = await client.get("/login")
    refused = await client.post("/login", data={"login": "amy", "password": PASSWORD, "csrf_token": csrf_of(page.text)})
    assert refused.status_code == 401
    csrf = await sign_in(client, "root")
    await client.post(f"/admin/users/{world.users['amy']}/active", data={"csrf_token": csrf, "active": "1"})
    stale = await client.get("/notes/", headers={"Cookie": f"crm_session={amy_cookie}"})
    assert stale.status_code == 303  # a revoked session stays revoked after reactivation
    await sign_in(client, "amy")
    assert (await client.get("/notes/")).status_code == 200


async def test_password_rules(crm_db_url) -> None:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    from core.errors import ValidationError
    from core.security import passwords
    from core.security.users import create_user

    common = next(p for p in FREQUENCY_LISTS["passwords"] if len(p) >= 12)
    for bad in ("short-Pw-1", common, common.upper(), "xavier-the-admin-2024", "aaaaaaaaaaaaaa"):
        with pytest.raises(ValidationError) as exc:
            await create_user("xavier", "X", bad)
        assert "password" in exc.value.fields, bad
    user_id = await create_user("xavier", "X", "violet-Kettle-93")
    from core.security.models import User

    stored = (await User.select(User.password_hash).where(User.id == user_id).first())["password_hash"]
    assert stored.startswith("$argon2id$") and "violet" not in stored
    assert passwords.verify(stored, "violet-Kettle-93") and not passwords.verify(stored, "violet-Kettle-94")


async def test_failed_login_is_generic_audited_and_throttled(world_client) -> None:
    from core.security.models import LoginAttempt

    client, _ = world_client
    client.cookies.clear()
    unknown = await _login(client, "nobody", "whatever-password-1")
    wrong = await _login(client, "amy", "wrong-password-123")
    message = re.compile(r'<p class="error" role="alert">([^<]+)</p>')
    assert unknown.status_code == wrong.status_code == 401
    assert message.search(unknown.text).group(1) == message.search(wrong.text).group(1) == "Wrong login or password."
    assert [r["user_login"] for r in await audit_rows(action="login_failed")] == ["nobody", "amy"]
    for _ in range(3):  # the client's IP has now failed 5 times (amy: 4)
        assert (await _login(client, "amy", "wrong-password-123")).status_code == 401
    throttled = await _login(client, "amy", PASSWORD)  # right password, but the 6th attempt from this IP
    assert throttled.status_code == 429 and "crm_session" not in throttled.headers.get("set-cookie", "")
    assert len(await audit_rows(action="login_throttled")) == 1
    # the window slides: once the failures are old enough, the right password works again
    await LoginAttempt.update({LoginAttempt.at: dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)}).where(
        LoginAttempt.id > 0)
    assert (await _login(client, "amy")).status_code == 303
    assert [r["user_login"] for r in await audit_rows(action="login")][-1] == "amy"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"uvicorn on {port} exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"uvicorn on {port} did not start in time")


async def test_throttle_is_shared_by_two_processes(crm_db_url, tmp_path) -> None:
    """Five failures spread over two uvicorn processes; the sixth, on the second one, is refused with 429."""
    from core.testing import make_user

    await make_user("amy", "tb_user")
    env = {**os.environ, "CRM_DATABASE_URL": crm_db_url, "CRM_DATA_DIR": str(tmp_path), "CRM_SECRET_KEY": "t",
           "CRM_LOGIN_MAX_FAILURES": "5", "CRM_LOGIN_WINDOW_SECONDS": "900", "PYTHONPATH": str(ROOT)}
    env.pop("CRM_REDIS_URL", None)
    if crm_db_url.startswith("postgres"):  # the production shape: jobs on Redis, a connection pool per process
        env["CRM_REDIS_URL"] = "redis://127.0.0.1:6379/13"
    ports = [_free_port(), _free_port()]
    procs = [subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "core.app:factory", "--host",
                               "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for port in ports]
    try:
        deadline = time.monotonic() + 45
        for port, proc in zip(ports, procs, strict=True):
            _wait_ready(port, proc, deadline)
        first, second = (httpx.AsyncClient(base_url=f"http://127.0.0.1:{p}", timeout=10) for p in ports)
        async with first, second:
            statuses = []
            for client in (first, first, first, second, second, second):
                statuses.append((await _login(client, "amy", "wrong-password-123")).status_code)
            assert statuses == [401, 401, 401, 401, 401, 429]
            assert (await _login(second, "amy")).status_code == 429  # even the right password
            assert (await _login(first, "amy")).status_code == 429
        if crm_db_url.startswith("postgres"):  # each process keeps its pooled connections open between requests
            import asyncpg

            admin = await asyncpg.connect(crm_db_url)
            try:
                idle = await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                                            " AND pid <> pg_backend_pid()")
            finally:
                await admin.close()
            assert idle >= 2, idle
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr:
                proc.stderr.close()
    from core.security.models import LoginAttempt

    assert await LoginAttempt.count().where(LoginAttempt.key == "login:amy") == 5
