"""Write versions: a counter per model and per table, bumped once a write to it commits, so a cache of figures
computed from them (crm_reports' figure cache) can key on the versions it read and never serve a figure a later
write changed.

The counters live where every web process sees them: Redis when the CRM has one (``CRM_REDIS_URL``: processes are
scaled out), else in this process — the embedded shape, where web, workers and scheduler share one process. The
kernel's write paths bump them: every audited write (:mod:`core.security.audit`) by model, every bulk write
(:mod:`core.bulk`) by table. A write that does neither is seen when a cache's time to live runs out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from core import db

log = logging.getLogger(__name__)

PREFIX = "crm:v:"
_local: dict[str, int] = {}
_owner: list[Any] = [None]  # the runtime the local counters belong to (a new boot starts again)
_clients: dict[str, Any] = {}


def redis_url() -> str | None:
    """The shared store's URL, or None for the embedded shape (no runtime booted: None too)."""
    from core import runtime

    try:
        return runtime.current().settings.redis_url
    except Exception:
        return None


def client(url: str) -> Any:
    """One asyncio Redis client per URL and event loop (its connections belong to the loop), short time-outs: a
    cache must never hang a page."""
    import asyncio

    import redis.asyncio as aioredis

    key = f"{url}#{id(asyncio.get_running_loop())}"
    if key not in _clients:
        _clients[key] = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    return _clients[key]


def _counters() -> dict[str, int]:
    from core import runtime

    now = getattr(runtime, "_current", None)
    if _owner[0] is not now:
        _owner[0] = now
        _local.clear()
    return _local


def model_key(model: str) -> str:
    return f"model:{model}"


def table_key(tablename: str) -> str:
    return f"table:{tablename}"


async def bump(*keys: str) -> None:
    """Count a write to ``keys`` (see :func:`model_key`, :func:`table_key`); inside a transaction, when it commits
    (a reader between the write and the commit would otherwise cache the old figure under the new version)."""
    if not keys:
        return
    if db.in_atomic():
        db.after_commit(lambda: _bump_now(keys))
    else:
        await _bump_now(keys)


async def _bump_now(keys: Sequence[str]) -> None:
    counters = _counters()
    for key in keys:
        counters[key] = counters.get(key, 0) + 1
    url = redis_url()
    if url:
        import redis

        try:
            pipe = client(url).pipeline(transaction=False)
            for key in keys:
                pipe.incr(PREFIX + key)
            await pipe.execute()
        except (redis.RedisError, OSError) as exc:  # the write stands; caches fall back to their time to live
            log.warning("write versions not bumped in Redis (%s): %s", ", ".join(keys), exc)


async def read(keys: Sequence[str]) -> tuple[int, ...] | None:
    """The current versions of ``keys``; None when the shared store cannot be read (then cache nothing)."""
    url = redis_url()
    if not url:
        counters = _counters()
        return tuple(counters.get(k, 0) for k in keys)
    import redis

    try:
        values = await client(url).mget([PREFIX + k for k in keys])
    except (redis.RedisError, OSError):
        return None
    return tuple(int(v or 0) for v in values)
