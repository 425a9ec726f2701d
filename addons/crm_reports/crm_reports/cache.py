"""The figure cache: a report's result kept per (query, viewer's rights scope, database) with the write versions of
the dataset's model and table it was computed at, so a dashboard seen again costs a lookup, and a write to the
dataset (which bumps its version, :mod:`core.versions`) makes the entry stale: the next view computes the figure
again at once.

Where: Redis when the CRM has one — web processes keep no state of their own, every one must see the same
entries; in this process only in the embedded shape (no broker URL: one process serves everything); no cache when
processes are scaled out over RabbitMQ without Redis. Entries also expire after :data:`TTL_SECONDS`: writes that
bypass the kernel's write paths (raw SQL) and changes of rights or labels are seen by then.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from core import datasets, db, versions
from core.errors import CrmError
from core.security.access import Access

TTL_SECONDS = 300
#: larger results (exports) are computed each time: caching them would cost more than it saves
MAX_ROWS = 5000
LOCAL_ENTRIES = 512
PREFIX = "crm:reports:fig:"

_local: OrderedDict[str, tuple[float, str]] = OrderedDict()
#: entries fetched for this request by :func:`prefetch` (key → versions, entry)
_prefetched: ContextVar[dict[str, tuple[tuple[int, ...], str | None]] | None] = ContextVar(
    "crm_reports_prefetched", default=None)
_owner: list[Any] = [None]  # the runtime the local entries belong to: a new boot (a test's) starts empty
stats = {"hits": 0, "misses": 0}


def mode() -> str:
    """``redis``, ``local`` (embedded, one process) or ``off``."""
    from core import runtime

    try:
        settings = runtime.current().settings
    except Exception:
        return "off"
    if settings.redis_url:
        return "redis"
    return "off" if settings.rabbitmq_url else "local"


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, dt.datetime):
        return {"$t": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$D": value.isoformat()}
    raise TypeError(f"cannot cache {type(value).__name__}")


def _decode(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$d" in obj:
            return Decimal(obj["$d"])
        if "$t" in obj:
            return dt.datetime.fromisoformat(obj["$t"])
        if "$D" in obj:
            return dt.date.fromisoformat(obj["$D"])
    return obj


def dumps(result: datasets.Result) -> str:
    return json.dumps({"columns": [dataclasses.asdict(c) for c in result.columns], "rows": result.rows,
                       "totals": result.totals}, default=_encode, ensure_ascii=False)


def loads(text: str) -> datasets.Result:
    raw = json.loads(text, object_hook=_decode)
    return datasets.Result([datasets.ResultColumn(**c) for c in raw["columns"]], raw["rows"], raw["totals"])


def _database() -> str:
    engine = db.current()
    return repr(getattr(engine, "path", None) or getattr(engine, "config", None))


async def key_of(acc: Access, q: datasets.Query) -> tuple[str, list[str]]:
    """The entry's key (query, viewer's scope, database) and the write versions it depends on: the versions are
    stored in the entry and compared when it is read, so one round trip fetches both."""
    ds = await datasets.dataset(q.dataset, acc)
    who = acc.principal
    scope = None if who is None else [who.user_id, sorted(who.roles), sorted(who.team_ids),
                                      sorted(who.teammate_ids), sorted(who.subordinate_ids), who.language,
                                      who.timezone]
    raw = json.dumps([_database(), dataclasses.asdict(q), scope], default=str, sort_keys=True)
    return (PREFIX + hashlib.sha256(raw.encode()).hexdigest(),
            [versions.model_key(ds.model), versions.table_key(ds.table._meta.tablename)])


async def prefetch(acc: Access, queries: Sequence[datasets.Query]) -> None:
    """Fetch the entries of ``queries`` (a dashboard's cards) in one Redis round trip, for :func:`cached` to use
    during this request; nothing to do in the process's own cache. A query that fails here fails later, alone."""
    if mode() != "redis":
        return
    import redis

    wanted: list[tuple[str, list[str]]] = []
    for q in queries:
        if q.limit <= MAX_ROWS:
            with contextlib.suppress(CrmError):
                wanted.append(await key_of(acc, q))
    if not wanted:
        return
    try:
        pipe = versions.client(versions.redis_url() or "").pipeline(transaction=False)
        for key, version_keys in wanted:
            pipe.mget([versions.PREFIX + k for k in version_keys])
            pipe.get(key)
        found = await pipe.execute()
    except (redis.RedisError, OSError):
        return
    got = {}
    for i, (key, _) in enumerate(wanted):
        value = found[2 * i + 1]
        got[key] = (tuple(int(v or 0) for v in found[2 * i]), value.decode() if isinstance(value, bytes) else value)
    _prefetched.set(got)


async def _lookup(key: str, version_keys: list[str]) -> tuple[tuple[int, ...] | None, str | None]:
    """The current versions and the stored entry, in one round trip to Redis (a pipeline)."""
    if mode() == "local":
        return await versions.read(version_keys), await _get(key)
    ready = _prefetched.get()
    if ready and key in ready:
        return ready.pop(key)  # once: a second look (after this request's own write) asks Redis again
    import redis

    try:
        pipe = versions.client(versions.redis_url() or "").pipeline(transaction=False)
        pipe.mget([versions.PREFIX + k for k in version_keys])
        pipe.get(key)
        found, value = await pipe.execute()
    except (redis.RedisError, OSError):
        return None, None
    text = value.decode() if isinstance(value, bytes) else value
    return tuple(int(v or 0) for v in found), text


def _entries() -> OrderedDict[str, tuple[float, str]]:
    from core import runtime

    now = getattr(runtime, "_current", None)
    if _owner[0] is not now:
        _owner[0] = now
        _local.clear()
    return _local


async def _get(key: str) -> str | None:
    if mode() == "local":
        _entries()
        entry = _local.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        _local.move_to_end(key)
        return entry[1]
    import redis

    try:
        value = await versions.client(versions.redis_url() or "").get(key)
    except (redis.RedisError, OSError):
        return None
    return value.decode() if isinstance(value, bytes) else value


async def _put(key: str, text: str) -> None:
    if mode() == "local":
        _entries()
        _local[key] = (time.monotonic() + TTL_SECONDS, text)
        _local.move_to_end(key)
        while len(_local) > LOCAL_ENTRIES:
            _local.popitem(last=False)
        return
    import redis

    with contextlib.suppress(redis.RedisError, OSError):  # a cache that cannot store computes again next time
        await versions.client(versions.redis_url() or "").set(key, text, ex=TTL_SECONDS)


async def drawn(what: Any, draw: Callable[[], Awaitable[str]]) -> str:
    """A chart's SVG kept by what it is drawn from (``what``: the spec, which holds the figures, width, language):
    the same figures draw the same picture, so no write needs to invalidate it; ``""`` (not drawn) is not kept."""
    if mode() == "off":
        return await draw()
    key = PREFIX + "svg:" + hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()
    found = await _get(key)
    if found is not None:
        return found
    text = await draw()
    if text:
        await _put(key, text)
    return text


async def cached(acc: Access, q: datasets.Query,
                 compute: Callable[[], Awaitable[datasets.Result]]) -> datasets.Result:
    """``compute()``'s result for ``q`` as ``acc``, from the cache when no write changed the dataset since."""
    if mode() == "off" or q.limit > MAX_ROWS:
        return await compute()
    key, version_keys = await key_of(acc, q)
    # versions read before computing: a write meanwhile makes the stored entry stale, never the reverse
    current, text = await _lookup(key, version_keys)
    if current is None:
        return await compute()  # the shared store cannot be read: compute, keep nothing
    tag = json.dumps(current) + "\n"
    if text is not None and text.startswith(tag):
        stats["hits"] += 1
        return loads(text[len(tag):])
    stats["misses"] += 1
    result = await compute()
    if len(result.rows) + len(result.totals) <= MAX_ROWS:
        await _put(key, tag + dumps(result))
    return result
