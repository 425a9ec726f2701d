"""``crm serve``, ``crm worker``, ``crm scheduler``: the processes of a deployment."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import click

from core import jobs, scheduler
from core.cli.common import handle_errors, run, settings
from core.runtime import boot
from core.settings import Settings


def _preflight() -> Settings:
    """Fail in the parent with one readable line rather than in every worker."""
    cfg = settings()
    run(boot(cfg))
    return cfg


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--workers", default=1, show_default=True, help="uvicorn worker processes")
@click.option("--forwarded-allow-ips", default=None,
              help="proxies trusted for X-Forwarded-For (default: CRM_FORWARDED_ALLOW_IPS, else 127.0.0.1)")
@handle_errors
def serve(host: str, port: int, workers: int, forwarded_allow_ips: str | None) -> None:
    """Serve the web app with uvicorn."""
    import uvicorn

    started = time.perf_counter()
    cfg = _preflight()
    click.echo(f"booted in {time.perf_counter() - started:.2f}s; serving on http://{host}:{port}")
    # a proxy not listed here is taken for the client: every user behind it would share one address, hence
    # one login throttle and one IP in the audit log
    uvicorn.run("core.app:factory", factory=True, host=host, port=port, workers=workers, proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips or cfg.forwarded_allow_ips,
                log_level=os.environ.get("CRM_LOG_LEVEL", "info"))


def _wait_for_signal() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@click.command("worker")
@click.option("--threads", default=4, show_default=True)
@handle_errors
def worker(threads: int) -> None:
    """Run job worker threads against the configured broker, Redis or RabbitMQ (start more processes to scale
    out)."""

    async def go() -> None:
        cfg = settings()
        if not cfg.broker_url:
            raise click.UsageError("neither CRM_REDIS_URL nor CRM_RABBITMQ_URL is set: the embedded server runs "
                                   "its own jobs")
        await boot(cfg)
        w = jobs.start_worker(threads)
        click.echo(f"worker running with {threads} threads; Ctrl-C to stop")
        stop = _wait_for_signal()
        await stop.wait()
        w.stop()

    run(go())


@click.command("scheduler")
@handle_errors
def scheduler_cmd() -> None:
    """Fire periodic schedules and re-dispatch lost outbox rows (safe to run on several machines)."""

    async def go() -> None:
        rt = await boot(settings())
        stop = _wait_for_signal()
        click.echo(f"scheduler running {len(rt.schedules)} schedule(s)")
        await scheduler.run_forever(rt.schedules, stop)

    run(go())
