"""A small PostgreSQL pool for the send jobs' event loop.

A ``crm worker``'s jobs run on an event loop that has no pool (the kernel pools only the web loop), so each query
opens a PostgreSQL connection of its own. A campaign batch commits once a message (the row it is about to send
is marked ``sending`` in the same commit as the previous one ``sent``), which made a connection a message the
cost of a send. :func:`ensure` starts a pool on the loop of the first batch and keeps it for the life of the
loop: every query on it then shares the pool (closing it when a batch ends broke other jobs' queries on the same
loop, "pool is closing"). Where another loop has the engine's pool (the embedded web process), nothing changes.
(The kernel's ``core.db`` is the better home for this; kept here while that module has other work in progress.)
"""

from __future__ import annotations

import asyncio
from typing import Any

from core import db

_ready: dict[tuple[int, int], asyncio.Task[Any]] = {}  # (engine, loop) → the pool's start


async def ensure(size: int = 4) -> None:
    engine: Any = db.current()  # the kernel's CrmPostgresEngine on PostgreSQL
    if not db.is_postgres(engine) or not hasattr(engine, "_crm_pool"):
        return
    loop = asyncio.get_running_loop()
    key = (id(engine), id(loop))
    ready = _ready.get(key)
    if ready is not None and ready.done() and ready.exception() is not None:
        ready = None  # the server was down at the first try: try again
    if ready is None:
        if engine._crm_pool is not None:
            return  # another loop's pool (the web process's): queries here keep a connection each
        ready = _ready[key] = loop.create_task(engine.start_connection_pool(min_size=1, max_size=size))
    await asyncio.shield(ready)
