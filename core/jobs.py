"""Background jobs: one Dramatiq broker, actors declared by addons, every job recorded in the outbox.

- ``CRM_REDIS_URL`` set: a ``RedisBroker``; ``crm worker`` processes run the actors.
- otherwise: an in-process broker whose worker threads start in the app's lifespan (embedded default).

Actors are registered with :func:`actor` at import (no broker needed then) and declared on the broker at
boot, so the same addon code runs against either broker. A job is sent with :func:`enqueue`, which writes
an outbox row in the caller's transaction and dispatches it after commit; the message carries only the row
id, the payload stays in the database, which stays the source of truth if the broker loses messages.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from core.errors import ConfigError

log = logging.getLogger("crm.jobs")

JobFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: JobFn
    max_retries: int = 5
    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    time_limit_ms: int = 300_000
    queue: str = "default"

    @property
    def owner(self) -> str:
        return self.name.split(".", 1)[0]


_SPECS: dict[str, JobSpec] = {}
_broker: dramatiq.Broker | None = None


def actor(name: str, *, max_retries: int = 5, min_backoff_ms: int = 500, max_backoff_ms: int = 60_000,
          time_limit_ms: int = 300_000, queue: str = "default") -> Callable[[JobFn], JobFn]:
    """Register an async function as the actor ``name`` (``<addon>.<verb>``). It must be idempotent."""
    if "." not in name:
        raise ValueError(f"actor name {name!r} must be '<addon>.<verb>'")

    def register(fn: JobFn) -> JobFn:
        _SPECS[name] = JobSpec(name, fn, max_retries, min_backoff_ms, max_backoff_ms, time_limit_ms, queue)
        return fn

    return register


def registered() -> list[JobSpec]:
    """Every actor registered so far (by the actors modules imported in this process)."""
    return list(_SPECS.values())


def spec(name: str) -> JobSpec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown actor {name!r}") from None


def make_broker(redis_url: str | None) -> dramatiq.Broker:
    """The broker the settings ask for (``Settings.broker_url``): RabbitMQ for an ``amqp://`` URL, Redis for a
    ``redis://`` one, in-process for None; an unreachable broker is a clear error, not a hang."""
    broker: dramatiq.Broker
    if redis_url and redis_url.startswith(("amqp://", "amqps://")):
        broker = _rabbitmq(redis_url)
    elif redis_url:
        import redis
        from dramatiq.brokers.redis import RedisBroker

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ConfigError(f"CRM_REDIS_URL {redis_url!r} is unreachable: {exc}") from exc
        broker = RedisBroker(client=client)  # type: ignore[no-untyped-call]
    else:
        broker = StubBroker()
    broker.add_middleware(AsyncIO())
    return broker


def _rabbitmq(url: str) -> dramatiq.Broker:
    import pika
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from core.db import redact

    params = pika.URLParameters(url)
    params.socket_timeout = params.blocked_connection_timeout = 3
    params.connection_attempts = 1
    try:
        pika.BlockingConnection(params).close()
    except Exception as exc:  # pika's errors share no useful base
        raise ConfigError(f"CRM_RABBITMQ_URL {redact(url)!r} is unreachable: {type(exc).__name__}: {exc}") from exc
    return RabbitmqBroker(url=url)


def configure(redis_url: str | None, owners: set[str]) -> dramatiq.Broker:
    """Make the broker current and declare every registered actor whose owner is installed."""
    global _broker
    from core.outbox import run_job

    broker = make_broker(redis_url)
    dramatiq.set_broker(broker)
    for job in _SPECS.values():
        if job.owner in owners:
            dramatiq.Actor(_runner(job, run_job), broker=broker, actor_name=job.name, queue_name=job.queue,
                           priority=0, options={"max_retries": job.max_retries + 1,
                                                "min_backoff": job.min_backoff_ms,
                                                "max_backoff": job.max_backoff_ms,
                                                "time_limit": job.time_limit_ms})
    _broker = broker
    return broker


def _runner(job: JobSpec, run_job: Callable[[JobSpec, int], Awaitable[None]]) -> JobFn:
    async def run(outbox_id: int) -> None:
        if not is_embedded():  # a worker process: its loop pools connections like the web loop
            from core import db

            await db.ensure_loop_pool()
        await run_job(job, outbox_id)

    run.__name__ = job.name.replace(".", "_")
    return run


def broker() -> dramatiq.Broker:
    if _broker is None:
        raise ConfigError("no job broker configured")
    return _broker


def is_embedded() -> bool:
    return isinstance(broker(), StubBroker)


def start_worker(threads: int = 4) -> dramatiq.Worker:
    """Start worker threads on the current broker (the in-process default, or ``crm worker``)."""
    worker = dramatiq.Worker(broker(), worker_threads=threads, worker_timeout=200)
    worker.start()
    return worker


async def enqueue(name: str, *, dedup_key: str | None = None, **payload: Any) -> int:
    """Ask for ``name`` to run with ``payload`` once the current transaction commits."""
    from core.outbox import write

    return await write(spec(name), payload, dedup_key)
