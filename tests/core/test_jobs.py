"""Jobs through the outbox, on the in-process broker and on the real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from core import db, jobs, outbox
from core.discovery import Discovered
from core.models import Outbox

REDIS_URL = "redis://127.0.0.1:6379/15"
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


async def _wait(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def _state(outbox_id: int) -> str:
    return (await Outbox.select(Outbox.state).where(Outbox.id == outbox_id).first())["state"]


@pytest.fixture(params=["inprocess", "redis", "rabbitmq"])
async def worker(request, crm_boot, found: Discovered):
    """A booted runtime with worker threads on the requested broker."""
    redis_url = REDIS_URL if request.param == "redis" else None
    rabbitmq_url = RABBITMQ_URL if request.param == "rabbitmq" else None
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    runtime = await crm_boot("crm_testext", found=found, redis_url=redis_url, rabbitmq_url=rabbitmq_url)
    if rabbitmq_url:
        jobs.broker().flush_all()  # what an earlier run left in the durable queues
    w = jobs.start_worker(2)
    yield runtime
    w.stop()
    if rabbitmq_url:
        jobs.broker().close()


async def test_job_enqueued_in_a_transaction_runs_after_commit(worker) -> None:
    from crm_testbase.models import Note

    note_id = (await Note.select(Note.id).first())["id"]
    async with db.atomic():
        job = await jobs.enqueue("crm_testbase.record", note_id=note_id)
        assert await _state(job) == "pending"
    await _wait(lambda: _is(job, "done"))
    assert (await Note.select(Note.title).where(Note.id == note_id).first())["title"] == "Welcome note!"


async def _is(job: int, state: str) -> bool:
    return await _state(job) == state


async def test_rolled_back_transaction_sends_nothing(worker) -> None:
    from crm_testbase import actors

    with pytest.raises(RuntimeError):
        async with db.atomic():
            await jobs.enqueue("crm_testbase.record", note_id=1)
            raise RuntimeError("business rule failed")
    await asyncio.sleep(0.5)
    assert await Outbox.count() == 0
    assert actors.CALLS == []


async def test_transient_failures_are_retried_with_backoff(worker) -> None:
    job = await jobs.enqueue("crm_testbase.flaky", fail_times=2, key="a")
    await _wait(lambda: _is(job, "done"))
    row = await Outbox.select(Outbox.attempts, Outbox.last_error).where(Outbox.id == job).first()
    assert row["attempts"] == 3 and row["last_error"] == ""


async def test_exhausted_retries_land_in_the_failed_list_and_can_be_redriven(worker) -> None:
    from crm_testbase import actors

    job = await jobs.enqueue("crm_testbase.flaky", fail_times=3, key="b")  # max_retries=2: 3 attempts
    await _wait(lambda: _is(job, "failed"))
    failed = await outbox.failed()
    assert [f["id"] for f in failed] == [job]
    assert "transient failure of b" in failed[0]["last_error"]
    assert await outbox.retry([job]) == 1
    await _wait(lambda: _is(job, "done"))  # the 4th call succeeds
    assert actors.CALLS.count(("flaky", "b")) == 4


async def test_permanent_error_is_not_retried(worker) -> None:
    from crm_testbase import actors

    job = await jobs.enqueue("crm_testbase.doomed")
    await _wait(lambda: _is(job, "failed"))
    await asyncio.sleep(0.3)
    assert actors.CALLS.count(("doomed", None)) == 1
    assert (await outbox.failed())[0]["last_error"] == "the ERP says no"


async def test_a_job_told_to_wait_runs_later_without_using_its_attempts(worker) -> None:
    from crm_testbase import actors

    job = await jobs.enqueue("crm_testbase.patient", waits=3, key="p")  # max_retries=1: 3 failures would end it
    await _wait(lambda: _is(job, "done"))
    row = await Outbox.select(Outbox.attempts, Outbox.last_error).where(Outbox.id == job).first()
    assert actors.CALLS.count(("patient", "p")) == 4 and (row["attempts"], row["last_error"]) == (1, "")
    assert await outbox.failed() == []


async def test_event_listener_enqueues_in_the_publishers_transaction(worker) -> None:
    from crm_testext import actors as ext

    from core.hooks import publish

    ext.SEEN.clear()
    async with db.atomic():
        assert await publish("crm_testbase_note_created", note_id=42) == [42]
    await _wait(lambda: _async(42 in ext.SEEN))


async def _async(value: bool) -> bool:
    return value


async def test_lost_messages_are_recovered_by_the_sweep(crm_boot, found: Discovered) -> None:
    """The broker forgot the message (crash, Redis restart): the outbox row is swept and run."""
    await crm_boot("crm_testbase", found=found)
    from crm_testbase.models import Note

    note_id = (await Note.select(Note.id).first())["id"]
    job = await jobs.enqueue("crm_testbase.record", note_id=note_id)
    jobs.broker().flush_all()  # the message is gone; the row stays pending
    w = jobs.start_worker(1)
    try:
        await asyncio.sleep(0.3)
        assert await _state(job) == "pending"
        assert await outbox.sweep(stale_seconds=0, fresh_seconds=0) == 1
        await _wait(lambda: _is(job, "done"))
    finally:
        w.stop()


async def test_duplicate_delivery_runs_the_job_once(crm_boot, found: Discovered) -> None:
    await crm_boot("crm_testbase", found=found)
    from crm_testbase import actors

    job = await jobs.enqueue("crm_testbase.record", note_id=1)
    await outbox.dispatch([job])  # a second message for the same row
    w = jobs.start_worker(2)
    try:
        await _wait(lambda: _is(job, "done"))
        await asyncio.sleep(0.3)
        assert actors.CALLS.count(("record", 1)) == 1
    finally:
        w.stop()


async def test_dedup_key_makes_enqueue_idempotent(crm_boot, found: Discovered) -> None:
    await crm_boot("crm_testbase", found=found)
    first = await jobs.enqueue("crm_testbase.record", dedup_key="note-1", note_id=1)
    assert await jobs.enqueue("crm_testbase.record", dedup_key="note-1", note_id=1) == first
    assert await Outbox.count() == 1


def test_unreachable_redis_is_a_clear_error() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="CRM_REDIS_URL 'redis://127.0.0.1:1/0' is unreachable"):
        jobs.make_broker("redis://127.0.0.1:1/0")


async def test_unknown_actor_is_refused(crm_boot, found: Discovered) -> None:
    from core.errors import ConfigError

    await crm_boot("crm_testbase", found=found)
    with pytest.raises(ConfigError, match="unknown actor 'crm_testbase.nope'"):
        await jobs.enqueue("crm_testbase.nope")

def test_unreachable_rabbitmq_is_a_clear_error() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"CRM_RABBITMQ_URL 'amqp://guest:\*\*\*@127.0.0.1:1/' is unreachable"):
        jobs.make_broker("amqp://guest:guest@127.0.0.1:1/")


def test_one_setting_chooses_rabbitmq(tmp_path, monkeypatch) -> None:
    from core.settings import Settings

    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CRM_REDIS_URL", REDIS_URL)
    assert Settings.from_env(env_file=None).broker_url == REDIS_URL
    monkeypatch.setenv("CRM_RABBITMQ_URL", RABBITMQ_URL)
    assert Settings.from_env(env_file=None).broker_url == RABBITMQ_URL
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = jobs.make_broker(RABBITMQ_URL)
    try:
        assert isinstance(broker, RabbitmqBroker)
    finally:
        broker.close()


async def test_a_heartbeat_keeps_a_short_lease_while_the_job_runs(crm_boot, found: Discovered) -> None:
    """``outbox.heartbeat``: the claim's long lease becomes a short one renewed while the block runs, so a killed
    worker's job is swept again about that long after its death; outside a job it does nothing."""
    import datetime as dt

    await crm_boot("crm_testbase", found=found)
    job = await jobs.enqueue("crm_testbase.record", note_id=1)
    assert await outbox.claim(job, 300) is not None

    async def lease() -> dt.datetime:
        return (await Outbox.select(Outbox.lease_until).where(Outbox.id == job).first())["lease_until"]

    async with outbox.heartbeat(5):  # not inside a job: no row touched
        pass
    assert (await lease() - dt.datetime.now(dt.UTC)).total_seconds() > 200
    token = outbox._running.set(job)
    try:
        async with outbox.heartbeat(3):
            first = await lease()
            assert (first - dt.datetime.now(dt.UTC)).total_seconds() < 3.5
            await asyncio.sleep(1.5)  # a beat (every second)
            renewed = await lease()
            assert renewed > first
        await asyncio.sleep(1.3)  # the beat stopped with the block
        assert await lease() == renewed
    finally:
        outbox._running.reset(token)
