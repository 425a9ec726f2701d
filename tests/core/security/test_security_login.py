"""Login under attack: parallel guesses are each counted before the password is checked, an unknown login
costs the same argon2 check as a wrong password, and right passwords do not fill the throttle."""

from __future__ import annotations

import asyncio
from typing import Any

from argon2 import PasswordHasher

from core.testing import csrf_of, make_user

PASSWORD = "Correct-Horse-42!"


async def _post_login(client: Any, csrf: str, login: str, password: str) -> int:
    response = await client.post("/login", data={"login": login, "password": password, "csrf_token": csrf})
    return int(response.status_code)


async def test_parallel_wrong_passwords_are_each_counted(crm_client: Any) -> None:
    from core.security.models import LoginAttempt

    client = await crm_client()
    await make_user("amy")
    csrf = csrf_of((await client.get("/login")).text)
    statuses = await asyncio.gather(*[_post_login(client, csrf, "amy", f"wrong-password-{i}") for i in range(12)])
    assert statuses.count(429) >= 7, statuses  # limit 5: at most 5 reach the password check
    assert set(statuses) <= {401, 429}, statuses
    # only attempts that reached the check are kept (per login and per IP), refused ones are taken back
    assert await LoginAttempt.count().where(LoginAttempt.key == "login:amy") == statuses.count(401) <= 5
    # parallel attempts may refuse each other (a row counts while its check runs): the failures left make
    # up the limit exactly, and then even the right password is refused
    for i in range(5 - statuses.count(401)):
        assert await _post_login(client, csrf, "amy", f"wrong-again-{i}") == 401
    assert await _post_login(client, csrf, "amy", PASSWORD) == 429


async def test_right_passwords_do_not_fill_the_ip_throttle(crm_client: Any) -> None:
    client = await crm_client()
    await make_user("amy")
    for _ in range(7):  # more than the limit (5) of successful logins from one address
        client.cookies.clear()
        csrf = csrf_of((await client.get("/login")).text)
        assert await _post_login(client, csrf, "amy", PASSWORD) == 303


class _SpyHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002 - argon2's own name
        self.verified += 1
        return super().verify(hash, password)


async def test_unknown_login_costs_one_password_check(crm_client: Any, monkeypatch: Any) -> None:
    """The time of a refusal does not tell whether the login exists: every refusal runs one argon2 verify
    (for an unknown or deactivated login, against a dummy hash) — counted here rather than timed."""
    from core.security import passwords
    from core.security.models import User

    spy = _SpyHasher()
    monkeypatch.setattr(passwords, "_hasher", spy)
    client = await crm_client()
    await make_user("amy")
    await make_user("old")
    await User.update({User.is_active: False}).where(User.login == "old")
    csrf = csrf_of((await client.get("/login")).text)
    for login, password in (("nobody", "whatever-password-1"), ("amy", "wrong-password-123"), ("old", PASSWORD)):
        before = spy.verified
        assert await _post_login(client, csrf, login, password) == 401
        assert spy.verified == before + 1, login
    assert not passwords.verify("", "")  # no stored hash never matches, whatever the dummy hash is of


async def test_clients_behind_a_trusted_proxy_are_throttled_apart(crm_boot: Any) -> None:
    """Behind the proxy uvicorn trusts (``CRM_FORWARDED_ALLOW_IPS``), the forwarded client address keys the
    throttle and goes to the audit log: one client's failures do not lock out the others."""
    import httpx
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from core.app import create_app
    from core.security.models import AuditLog

    app = ProxyHeadersMiddleware(create_app(runtime=await crm_boot(), run_jobs=False), trusted_hosts="10.0.0.5")
    transport = httpx.ASGITransport(app=app, client=("10.0.0.5", 40000))  # the proxy's address
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        csrf = csrf_of((await client.get("/login")).text)

        async def attempt(client_ip: str, login: str) -> int:
            response = await client.post("/login", data={"login": login, "password": "wrong-password-1",
                                                          "csrf_token": csrf},
                                         headers={"X-Forwarded-For": client_ip})
            return int(response.status_code)

        assert [await attempt("198.51.100.7", f"user{i}") for i in range(6)] == [401] * 5 + [429]
        assert await attempt("203.0.113.9", "someone") == 401  # another client behind the same proxy
    ips = {r["ip"] for r in await AuditLog.select(AuditLog.ip).where(AuditLog.action == "login_failed")}
    assert ips == {"198.51.100.7", "203.0.113.9"}


def test_serve_passes_the_trusted_proxies_to_uvicorn(monkeypatch: Any, tmp_path: Any) -> None:
    import uvicorn
    from click.testing import CliRunner

    from core.cli import run as run_cli
    from core.settings import Settings

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(run_cli, "_preflight", lambda: Settings.from_env(env_file=None))
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRM_FORWARDED_ALLOW_IPS", "172.28.0.10")
    assert CliRunner().invoke(run_cli.serve, []).exit_code == 0
    assert seen["proxy_headers"] and seen["forwarded_allow_ips"] == "172.28.0.10"
    assert CliRunner().invoke(run_cli.serve, ["--forwarded-allow-ips", "10.1.2.3"]).exit_code == 0
    assert seen["forwarded_allow_ips"] == "10.1.2.3"
