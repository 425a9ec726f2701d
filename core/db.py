"""The database engine: one Piccolo engine for every addon's tables, chosen by ``CRM_DATABASE_URL``.

Piccolo tables find their engine through ``piccolo_conf``; :func:`bind` points that module and every table
class already imported at the engine in use, so tests can switch between SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

from core.errors import ConfigError

os.environ.setdefault("PICCOLO_CONF", "core.piccolo_conf")

_engine: Engine[Any] | None = None
_after_commit: ContextVar[list[Callable[[], Awaitable[None]]] | None] = ContextVar(
    "crm_after_commit", default=None
)
_tx_state: ContextVar[dict[str, Any] | None] = ContextVar("crm_tx_state", default=None)
_before_commit: ContextVar[list[Callable[[], Awaitable[None]]] | None] = ContextVar(
    "crm_before_commit", default=None
)


def redact(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class _Pinned:
    """The pool connection one request runs all its queries on (taken at its first query)."""

    __slots__ = ("connection", "pool", "task")

    def __init__(self, pool: Any, task: Any) -> None:
        self.pool, self.task, self.connection = pool, task, None

    async def get(self) -> Any:
        if self.connection is None:
            self.connection = await self.pool.acquire()
        return self.connection


_pinned: ContextVar[_Pinned | None] = ContextVar("crm_pinned_connection", default=None)


def _pinned_for(pool: Any) -> _Pinned | None:
    held = _pinned.get()
    # a task spawned during the request copies the context: it must not share the request's connection
    if held is not None and held.pool is pool and held.task is asyncio.current_task():
        return held
    return None


class _Transaction(PostgresTransaction):
    """A transaction on the request's pinned connection when there is one (else Piccolo's own), so a
    request never holds one pool connection while waiting for a second (N such requests would deadlock)."""

    _held: _Pinned | None = None

    async def get_connection(self) -> Any:
        held = _pinned_for(self.engine.pool) if self.engine.pool else None
        if held is None:
            return await super().get_connection()  # type: ignore[no-untyped-call]
        self._held = held
        return await held.get()

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent or self._held is None:
            return await super().__aexit__(exception_type, exception, traceback)
        if exception:
            if not self._rolled_back:
                await self.rollback()  # type: ignore[no-untyped-call]
        elif not self._committed and not self._rolled_back:
            await self.commit()  # type: ignore[no-untyped-call]
        self.engine.current_transaction.reset(self.context)
        return exception is None


class CrmPostgresEngine(PostgresEngine):
    """Piccolo's PostgreSQL engine with a pool that belongs to the event loop that started it.

    asyncpg pools are bound to one loop: the web loop pools, while in-process job threads (their own loops)
    see no pool and open a connection per query, as without one. Inside :func:`request_connection` every
    query of the request (transactions included) runs on one pool connection, acquired and reset once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._crm_pool: Any = None
        self._crm_pool_loop: Any = None
        super().__init__(*args, **kwargs)

    @property
    def pool(self) -> Any:
        if self._crm_pool is None:
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        return self._crm_pool if loop is self._crm_pool_loop else None

    @pool.setter
    def pool(self, value: Any) -> None:
        self._crm_pool = value
        self._crm_pool_loop = asyncio.get_running_loop() if value is not None else None

    async def _run_in_pool(self, query: str, args: Any = None) -> Any:
        held = _pinned_for(self.pool)
        if held is None:
            return await super()._run_in_pool(query, args)
        return await (await held.get()).fetch(query, *(args or []))

    def transaction(self, allow_nested: bool = True) -> PostgresTransaction:
        return _Transaction(engine=self, allow_nested=allow_nested)


async def fetch_compiled(sql: str, args: list[Any]) -> list[dict[str, Any]]:
    """Rows of SQL already compiled by Piccolo for PostgreSQL (``QueryString.compile_string``), run where Piccolo
    would run it: the current transaction's connection, else the pool (the request's connection), else a new one."""
    engine = current()
    assert isinstance(engine, PostgresEngine)
    tx = engine.current_transaction.get()
    if tx:
        rows = await tx.connection.fetch(sql, *args)
    elif engine.pool:
        rows = await engine._run_in_pool(sql, args)
    else:
        rows = await engine._run_in_new_connection(sql, args)
    return [dict(r) for r in rows]


def json_column(value: Any, empty: Any) -> Any:
    """A JSON column's value as read (SQLite hands back text, PostgreSQL the decoded value): ``empty`` for none,
    blank or unreadable text."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value else empty
        except ValueError:
            return empty
    return empty if value is None else value


_loop_pools: dict[tuple[int, int], asyncio.Task[Any]] = {}  # (engine, loop) → the pool's start


async def ensure_loop_pool(size: int = 10) -> None:
    """A PostgreSQL pool for the running loop when the engine has none yet: a ``crm worker``'s jobs run on an
    event loop of their own (the kernel pools the web loop), where each query would open a connection. Started
    once per loop and kept for its life (closing it after a job would break the next job's queries on the same
    loop); where another loop holds the engine's pool (the embedded web process) nothing changes. ``size``
    exceeds twice the worker threads (4): each concurrent job may hold a transaction's connection and need
    another (a lease heartbeat beside it), so the pool never runs dry under its own jobs."""
    engine: Any = current()
    if not is_postgres(engine) or not hasattr(engine, "_crm_pool"):
        return
    loop = asyncio.get_running_loop()
    key = (id(engine), id(loop))
    ready = _loop_pools.get(key)
    if ready is not None and ready.done() and ready.exception() is not None:
        ready = None  # the server was down at the first try: try again
    if ready is None:
        if engine._crm_pool is not None:
            return
        ready = _loop_pools[key] = loop.create_task(engine.start_connection_pool(min_size=1, max_size=size))
    await asyncio.shield(ready)


@asynccontextmanager
async def request_connection() -> AsyncIterator[None]:
    """Run the queries of the enclosed block (one request) on one pool connection, taken at the first query
    and given back at the end; nothing happens without a pool on this loop (SQLite, job threads)."""
    engine = _engine
    pool = engine.pool if isinstance(engine, CrmPostgresEngine) else None
    if pool is None or _pinned_for(pool) is not None:
        yield
        return
    held = _Pinned(pool, asyncio.current_task())
    token = _pinned.set(held)
    try:
        yield
    finally:
        _pinned.reset(token)
        if held.connection is not None:
            await pool.release(held.connection)


def engine_for(url: str) -> Engine[Any]:
    """Build the engine a database URL names, or say clearly why not."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise ConfigError(f"CRM_DATABASE_URL {url!r}: write sqlite:///path/to/file.sqlite3")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return SQLiteEngine(path=path)
    if scheme in ("postgres", "postgresql"):
        dsn, cache = pg_dsn(url)
        config: dict[str, Any] = {"dsn": dsn, "statement_cache_size": cache}
        if cache:
            # Custom plans always: a pooled connection would otherwise settle on a generic plan after five runs of
            # a prepared statement, one that cannot use the search term's trigram index (list pages 8x slower).
            # Without the cache (behind PgBouncer) every statement is unnamed, planned for its values, and this
            # startup parameter, which PgBouncer refuses, is not needed.
            config["server_settings"] = {"plan_cache_mode": "force_custom_plan"}
        return CrmPostgresEngine(config=config)
    raise ConfigError(
        f"CRM_DATABASE_URL {redact(url)!r}: unsupported scheme {scheme!r} "
        "(use sqlite:///path or postgresql://user@host:port/db)"
    )


def pg_dsn(url: str) -> tuple[str, int]:
    """(the URL as libpq and asyncpg read it, asyncpg's statement cache size). ``?statement_cache_size=0`` on
    ``CRM_DATABASE_URL`` turns named prepared statements off: needed behind PgBouncer in transaction mode before
    1.21 (docs/operations.md); anything else in the query string is libpq's."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    found = [v for k, v in query if k == "statement_cache_size"]
    try:
        cache = int(found[-1]) if found else 100
    except ValueError:
        raise ConfigError(f"CRM_DATABASE_URL: statement_cache_size must be a whole number, got {found[-1]!r}") from None
    rest = urlencode([(k, v) for k, v in query if k != "statement_cache_size"])
    return urlunsplit(parts._replace(scheme="postgresql", query=rest)), max(cache, 0)


def is_postgres(engine: Engine[Any] | None = None) -> bool:
    return isinstance(engine or current(), PostgresEngine)


def _all_tables() -> list[type[Table]]:
    seen: list[type[Table]] = []
    stack = list(Table.__subclasses__())
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def bind(engine: Engine[Any]) -> Engine[Any]:
    """Make ``engine`` the one every table (imported now or later) uses."""
    global _engine
    _engine = engine
    for table in _all_tables():
        table._meta.db = engine
    return engine


def configure(url: str) -> Engine[Any]:
    return bind(engine_for(url))


def current() -> Engine[Any]:
    if _engine is None:
        raise ConfigError("no database configured: call core.db.configure() first")
    return _engine


async def check(engine: Engine[Any] | None = None, url: str = "") -> None:
    """Fail with a readable message if the database cannot be reached."""
    engine = engine or current()
    try:
        await engine.run_ddl("SELECT 1")
    except Exception as exc:  # the driver's errors have no common base
        name = redact(url) if url else type(engine).__name__
        raise ConfigError(f"database {name} is unreachable: {exc}") from exc


def after_commit(callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` once the enclosing :func:`atomic` block commits (now, if there is none)."""
    pending = _after_commit.get()
    if pending is None:
        raise RuntimeError("after_commit outside atomic(); call the callback directly")
    pending.append(callback)


def before_commit(callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` at the end of the enclosing outermost :func:`atomic` block, inside its transaction, just
    before it commits (not when the block raises): where a service writes once what the whole transaction did."""
    pending = _before_commit.get()
    if pending is None:
        raise RuntimeError("before_commit outside atomic()")
    pending.append(callback)


def in_atomic() -> bool:
    return _after_commit.get() is not None


def transaction_state() -> dict[str, Any] | None:
    """A dict that lives as long as the enclosing outermost :func:`atomic` block (None outside one): where a
    service keeps what it already wrote in this transaction (e.g. one outbox row per changed record)."""
    return _tx_state.get()


def _transaction(engine: Engine[Any]) -> Any:
    # SQLite: take the write lock at BEGIN, so two read-then-write transactions queue up instead of one
    # failing with "database is locked" halfway through.
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


def for_update(query: Any, *, skip_locked: bool = False) -> Any:
    """Lock the selected rows until the transaction ends (PostgreSQL ``FOR UPDATE``; SQLite's IMMEDIATE
    transactions already serialise writers). ``skip_locked``: leave out rows another transaction holds, so
    concurrent workers each take different rows of a queue instead of waiting for each other."""
    return query.lock_rows("UPDATE", skip_locked=skip_locked) if is_postgres() else query


@asynccontextmanager
async def atomic() -> AsyncIterator[None]:
    """One transaction; callbacks registered with :func:`after_commit` run only if it commits."""
    if _after_commit.get() is not None:
        async with current().transaction():
            yield
        return
    callbacks: list[Callable[[], Awaitable[None]]] = []
    token = _after_commit.set(callbacks)
    state_token = _tx_state.set({})
    before: list[Callable[[], Awaitable[None]]] = []
    before_token = _before_commit.set(before)
    try:
        async with _transaction(current()):
            yield
            while before:  # a callback may register another one
                await before.pop(0)()
    finally:
        _before_commit.reset(before_token)
        _tx_state.reset(state_token)
        _after_commit.reset(token)
    for callback in callbacks:
        try:
            await callback()
        except Exception:  # the transaction is committed; the outbox relay retries later
            print(f"after-commit callback failed: {sys.exc_info()[1]!r}", file=sys.stderr)
