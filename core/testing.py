"""Test support for the kernel and every addon (a pytest plugin, loaded through the ``pytest11`` entry point).

- ``crm_db_url``: a fresh database per test, once on SQLite and once on PostgreSQL (the machine's server on
  127.0.0.1:5432; each run makes its own throwaway databases and drops them).
- ``crm_boot``: install addons into that database and boot the runtime.
- :class:`AddonContract`: the conformance tests every addon subclasses in its ``tests/test_contract.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("CRM_TEST_BACKENDS", "sqlite,postgres").split(",") if b]


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def pg_admin(sql: str, url: str = PG_ADMIN_URL) -> None:
    """One statement on the PostgreSQL server outside any engine (CREATE / DROP DATABASE): tests and benches."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _kernel_schema(url: str) -> None:
    from core import db, lifecycle

    db.configure(url)
    await lifecycle.ensure_kernel()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2id, at minimal cost: the production cost (~0.4 s a hash) would dominate every test that
    creates or logs in a user. Processes the tests start (``crm demo``, workers) keep the real cost."""
    from argon2 import PasswordHasher

    from core.security import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture(scope="session")
def crm_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One database per backend with the kernel schema, copied for each test."""
    made: dict[str, str] = {}
    run_id = uuid.uuid4().hex[:8]
    if "sqlite" in BACKENDS:
        path = tmp_path_factory.mktemp("crm-template") / "template.sqlite3"
        asyncio.run(_kernel_schema(f"sqlite:///{path}"))
        made["sqlite"] = str(path)
    if "postgres" in BACKENDS:
        name = f"crm_tpl_{run_id}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
        asyncio.run(_kernel_schema(_pg_url(name)))
        made["postgres"] = name
    yield made
    if "postgres" in made:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{made["postgres"]}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def crm_db_url(request: pytest.FixtureRequest, crm_templates: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """A fresh database URL with the kernel schema (parametrized: sqlite, postgres)."""
    from core import db

    if request.param == "sqlite":
        path = tmp_path / "crm.sqlite3"
        shutil.copy(crm_templates["sqlite"], path)
        url = f"sqlite:///{path}"
        db.configure(url)
        yield url
        return
    name = f"crm_t_{uuid.uuid4().hex[:10]}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{crm_templates["postgres"]}"'))
    url = _pg_url(name)
    db.configure(url)
    yield url
    asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def crm_settings(crm_db_url: str, tmp_path: Path) -> Any:
    from core.settings import Settings

    return Settings(data_dir=tmp_path, database_url=crm_db_url, redis_url=None, secret_key="test-secret",
                    login_max_failures=5)


class _InstallCache:
    """Databases with a set of addons already installed, made once per run and copied for each test that asks
    for the same set: the install itself is tested where it is the subject (lifecycle and contract tests);
    everywhere else it is only the starting state, and copying it makes the suite several times faster."""

    def __init__(self, directory: Path, run_id: str) -> None:
        self.directory, self.run_id = directory, run_id
        self.made: dict[tuple[Any, ...], str] = {}

    @staticmethod
    def key(backend: str, names: tuple[str, ...], demo: bool, found: Any) -> tuple[Any, ...]:
        return backend, tuple(sorted(names)), demo, tuple(sorted((n, a.version) for n, a in found.addons.items()))

    async def restore(self, key: tuple[Any, ...], url: str) -> bool:
        """Replace the (still pristine) database at ``url`` by the cached one; False on a miss."""
        if key not in self.made or not await _pristine():
            return False
        if url.startswith("sqlite"):
            shutil.copy(self.made[key], url.split(":///", 1)[1])
        else:
            name = url.rsplit("/", 1)[1]
            await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.made[key]}"')
        return True

    async def store(self, key: tuple[Any, ...], url: str) -> None:
        if url.startswith("sqlite"):
            target = self.directory / f"install-{len(self.made)}.sqlite3"
            shutil.copy(url.split(":///", 1)[1], target)
            self.made[key] = str(target)
            return
        name = f"crm_tpl_{self.run_id}_{len(self.made)}"
        try:
            await pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
        except Exception:  # noqa: BLE001 - a connection still open on the source: simply no cache for this set
            return
        self.made[key] = name

    def drop(self) -> None:
        for key, made in self.made.items():
            if key[0] == "postgres":
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)'))


async def _pristine() -> bool:
    """Nothing installed and no user yet: the test has not written anything a copy would lose."""
    from core import lifecycle
    from core.security.models import User

    return not await lifecycle.installed() and await User.count() == 0


@pytest.fixture(scope="session")
def crm_install_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_InstallCache]:
    cache = _InstallCache(tmp_path_factory.mktemp("crm-installs"), uuid.uuid4().hex[:8])
    yield cache
    cache.drop()


@pytest.fixture
def crm_boot(crm_settings: Any, crm_install_cache: _InstallCache) -> Callable[..., Awaitable[Any]]:
    """``await crm_boot("crm_x", demo=False, found=None)``: install addons, then boot the runtime."""
    from core import lifecycle
    from core.discovery import discover
    from core.runtime import boot

    async def go(*names: str, demo: bool = False, found: Any = None, redis_url: str | None = None,
                 rabbitmq_url: str | None = None) -> Any:
        found = found or discover()
        if names:
            url = crm_settings.database_url
            key = crm_install_cache.key("sqlite" if url.startswith("sqlite") else "postgres", names, demo, found)
            if not await crm_install_cache.restore(key, url):
                fresh = await _pristine()
                await lifecycle.install(list(names), found, demo=demo)
                if fresh:
                    await crm_install_cache.store(key, url)
        return await boot(crm_settings.with_(redis_url=redis_url, rabbitmq_url=rabbitmq_url), found=found)

    return go


async def make_user(login: str, *roles: str, password: str = "Correct-Horse-42!", **kw: Any) -> int:
    from core.security.users import create_user

    return await create_user(login, login.title(), password, roles=roles, **kw)


async def login_client(client: Any, login: str, password: str = "Correct-Horse-42!") -> Any:
    """Log an httpx/TestClient client in through the real form (CSRF included)."""
    import re

    page = await _maybe(client.get("/login"))
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text)
    assert token, "login page has no CSRF field"
    response = await _maybe(client.post("/login", data={"login": login, "password": password,
                                                        "csrf_token": token.group(1), "next": "/"}))
    assert response.status_code in (200, 303), response.text[:300]
    return client


async def _maybe(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def csrf_of(html: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]*)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


@pytest.fixture
async def crm_client(crm_boot: Callable[..., Awaitable[Any]]) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """``client = await crm_client("crm_x")``: an httpx AsyncClient on the composed app."""
    import httpx

    from core.app import create_app

    opened: list[httpx.AsyncClient] = []

    async def go(*names: str, **kw: Any) -> httpx.AsyncClient:
        runtime = await crm_boot(*names, **kw)
        app = create_app(runtime=runtime, run_jobs=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                   follow_redirects=False)
        opened.append(client)
        return client

    yield go
    for client in opened:
        await client.aclose()


def _none(problems: list[str], what: str = "") -> None:
    """Fail with every problem, one a line (the kernel's plugin module gets no assertion rewriting)."""
    assert not problems, (f"{what}:\n  " if what else "\n  ") + "\n  ".join(problems)


async def _sample_rows(tables: list[Any]) -> None:
    """One row in each table that takes one with default values (foreign keys pointing at a row of the target
    table, if it has one): the data a reinstall must find. A table that refuses is left as it is."""
    from piccolo.columns import ForeignKey

    from core import db

    for table in tables:
        values: dict[Any, Any] = {}
        for column in table._meta.columns:
            if isinstance(column, ForeignKey):
                target = column._foreign_key_meta.resolved_references
                row = await target.select(target._meta.primary_key).first()
                if row is not None:
                    values[column] = next(iter(row.values()))
        try:
            async with db.atomic():
                await table.insert(table(_data=values))
        except Exception:  # noqa: BLE001, S112 - a required value defaults can't give: no sample for this one
            continue


async def _row_ids(tables: list[Any]) -> dict[str, list[int]]:
    return {t._meta.tablename: sorted(r["id"] for r in await t.select(t._meta.primary_key.as_alias("id")))
            for t in tables}


async def _traces_of(addon: Any) -> None:
    """What a purge must remove besides tables: a user holding each role only this addon declares, an outbox
    row and a schedule tick for each of its schedules."""
    from core.models import Outbox, ScheduleTick
    from core.security.models import User, UserRole

    if addon.roles:
        rows = await User.insert(User(login=f"contract_{addon.name}", name="Contract")).returning(User.id)
        for role in addon.roles:
            await UserRole.insert(UserRole(user=rows[0]["id"], role=role.name))
    for schedule in addon.schedules:
        await Outbox.insert(Outbox(actor=schedule.actor, payload={}))
        await ScheduleTick.insert(ScheduleTick(key=f"{schedule.actor}@1"))


class AddonContract:
    """Subclass in ``tests/test_contract.py`` with ``addon = "crm_x"``: what every addon must satisfy (each
    check is a function of :mod:`core.contract`, which says what it looks at)."""

    addon: str = ""

    def _found(self) -> Any:
        from core.discovery import discover

        return discover()

    def test_manifest_is_valid_and_discoverable(self) -> None:
        found = self._found()
        assert self.addon in found.addons, found.errors.get(self.addon, "not discovered")

    async def test_policy_names_defined_models_and_declared_roles(self) -> None:
        """Every grant, field rule and menu names a model the addon or a dependency defines (a table, a group
        of tables or an API resource), a field that model has, and a role someone declares."""
        from core import contract

        found = self._found()
        _none(await contract.policy_problems(found.addons[self.addon], found))

    def test_hooks_match_specs(self) -> None:
        """Every implementation in ``hooks`` and ``extras`` matches a spec and takes only what it passes."""
        from core import contract

        found = self._found()
        _none(contract.hook_problems(found.addons[self.addon], found))

    def test_actors_events_and_schedules_carry_the_addon_name(self) -> None:
        from core import contract

        _none(contract.naming_problems(self._found().addons[self.addon]))

    def test_translations_are_complete(self) -> None:
        """Every message of its templates, code, menus and roles is translated (not empty, not fuzzy)."""
        from core import contract

        found = self._found()
        _none(contract.translation_problems(found.addons[self.addon], found))

    async def test_installs_upgrades_uninstalls_and_purges(self, crm_db_url: str, crm_boot: Any) -> None:
        """Install into a fresh database (dependencies pulled in) → upgrade → uninstall, data kept → reinstall
        finds every row → uninstall ``--purge`` leaves nothing of the addon behind, its dependencies intact."""
        from core import contract, lifecycle
        from core.migrations_registry import tables_of

        found = self._found()
        addon = found.addons[self.addon]
        deps = [a.name for a in contract.chain(addon, found)][:-1]
        assert await lifecycle.installed() == {}
        assert await lifecycle.install([self.addon], found) == [*deps, self.addon]
        tables = tables_of(addon.models, addon.name)
        for table in tables:
            assert table._meta.tablename.startswith(f"{self.addon}_"), table._meta.tablename
        await _sample_rows(tables)
        rows = await _row_ids(tables)
        assert not tables or any(rows.values()), f"{self.addon}: no table could be given a row to keep"
        assert await lifecycle.upgrade([self.addon], found) == []
        assert await _row_ids(tables) == rows, "the upgrade changed which rows exist"

        await lifecycle.uninstall(self.addon, found)
        assert self.addon not in await lifecycle.installed()
        assert await _row_ids(tables) == rows, "uninstall without --purge lost rows"
        assert await lifecycle.install([self.addon], found) == [self.addon]
        assert await _row_ids(tables) == rows, "the reinstall did not find the data it left"

        plan = await lifecycle.uninstall(self.addon, found, purge=True, dry_run=True)
        assert sorted(plan.tables) == sorted(t._meta.tablename for t in tables)
        assert self.addon in await lifecycle.installed()
        await _traces_of(addon)
        await lifecycle.uninstall(self.addon, found, purge=True)
        _none(await contract.leftovers(addon, found), "left behind by the purge")
        assert sorted(await lifecycle.installed()) == sorted(deps)
        runtime = await crm_boot(found=found)
        assert self.addon not in runtime.names
        assert not [s for s in runtime.schedules if s.actor.startswith(f"{self.addon}.")]

    async def test_routes_need_a_login(self, crm_boot: Any) -> None:
        """Every page and API call of the addon refuses an anonymous request (GET and unsafe methods, with the
        pre-login CSRF token so the endpoint itself answers), unless its route is named ``public_…``."""
        from core import contract
        from core.app import create_app

        runtime = await crm_boot(self.addon, found=self._found())
        app = create_app(runtime=runtime, run_jobs=False)
        resources = runtime.state.get("api_resources", [])
        _none(await contract.unguarded_routes(app, runtime.addon(self.addon), resources))

    async def test_models_match_migrations(self) -> None:
        """The tables ``models`` declares are what the migrations build: ``crm addons makemigrations`` would
        find nothing to write. Guards the kernel's column mixins too: changing one changes every addon."""
        from itertools import chain

        from piccolo.apps.migrations.commands.new import AutoMigrationManager

        from core.migrations_registry import app_config

        addon = self._found().addons[self.addon]
        if not addon.models or not addon.migrations:
            return
        with contextlib.redirect_stdout(io.StringIO()):  # Piccolo prints a summary table
            found = await AutoMigrationManager(auto_input="y").get_alter_statements(app_config=app_config(addon))
        pending = list(chain.from_iterable(s.statements for s in found))
        assert not pending, f"{self.addon}: models differ from migrations (run crm addons makemigrations): {pending}"

    async def test_boots_and_templates_compile(self, crm_boot: Any) -> None:
        from core import templating

        runtime = await crm_boot(self.addon, found=self._found())
        assert self.addon in runtime.names
        env = templating.environment(runtime.addons)
        addon = runtime.addon(self.addon)
        if addon.templates:
            folder = templating.folder(addon.templates)
            for path in folder.rglob("*.html"):
                env.get_template(str(path.relative_to(folder)))


#: Debian's Chromium, never a browser a test tool downloads; the flags keep it off the (closed) network.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dovecot(prefix: str = "crm-dovecot-") -> tuple[Any, int, Path]:
    """Start a real IMAP server (Debian's dovecot-imapd) on 127.0.0.1 with a throwaway mail dir; any login,
    password ``secret``. Returns the process, its port and its directory (give both to :func:`stop_dovecot`)."""
    import socket
    import subprocess
    import tempfile
    import time

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    assert Path(binary).exists(), "dovecot is not installed: deploy/setup.sh --test installs dovecot-imapd"
    # not under pytest's tmp dir: that is 0700 root, and Dovecot reads the mail as the dovecot user
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "dovecot", "dovecot")
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 100
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  user = dovenull
  chroot =
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
""")
    proc = subprocess.Popen([binary, "-c", str(conf), "-F"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"dovecot did not start: {proc.stderr.read() if proc.stderr else b''!r}") from None
            time.sleep(0.1)
    return proc, port, root


def stop_dovecot(proc: Any, root: Path) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot() -> Any:
    """:func:`start_dovecot` for a test session: yields ``(host, port)``. Used by crm_service's inbound mail and
    crm_marketing's bounce mailbox; put messages in with :func:`imap_append`."""
    proc, port, root = start_dovecot()
    yield ("127.0.0.1", port)
    stop_dovecot(proc, root)


def imap_append(server: tuple[str, int], user: str, raw: bytes, folder: str = "INBOX") -> None:
    """Deliver ``raw`` into ``user``'s ``folder`` on the test IMAP server (as an MTA would: unseen)."""
    from imap_tools import MailBoxUnencrypted

    box = MailBoxUnencrypted(server[0], server[1], timeout=10)
    box.login(user, "secret")
    try:
        box.append(raw, folder, flag_set=[])
    finally:
        box.logout()


class MailInbox:
    """An aiosmtpd handler keeping every message it receives (the tests' SMTP sink)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        import email

        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@contextlib.contextmanager
def crm_process(data_dir: Path, command: str, env: dict[str, str] | None = None, timeout: float = 60
                ) -> Iterator[str]:
    """``crm <command> --port P`` (``serve`` or ``demo``) in a process of its own, with ``data_dir`` as its data
    dir and none of this process's ``CRM_*`` settings; yields its URL once ``/healthz`` answers."""
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATA_DIR": str(data_dir), "CRM_BASE_URL": url} | (env or {})
    log_path = data_dir / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "crm"), command, "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                assert proc.poll() is None, f"crm {command} exited: {log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"crm {command} not up in {timeout}s"
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def served_crm(data_dir: Path, commands: list[list[str]], password: str = "Correct-Horse-42!",
               timeout: float = 60) -> Iterator[str]:
    """A real ``crm serve`` on SQLite in ``data_dir``, after running ``crm <command>`` for each of
    ``commands`` (init, addons install, users create …) as an operator would; yields its URL."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATA_DIR": str(data_dir), "CRM_DATABASE_URL": f"sqlite:///{data_dir / 'crm.sqlite3'}",
        "CRM_NEW_PASSWORD": password}
    for cmd in commands:
        done = subprocess.run([str(Path(sys.executable).parent / "crm"), *cmd], env=env, capture_output=True,
                              timeout=120, text=True)
        assert done.returncode == 0, f"crm {' '.join(cmd)}: {done.stderr[-2000:]}"
    with crm_process(data_dir, "serve", env, timeout) as url:
        yield url
