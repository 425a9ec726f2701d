"""``crm service watch-mail``: the support mailbox watched with IMAP IDLE (``mailbox.watch``) until SIGTERM or
Ctrl-C, for mail → ticket in seconds instead of at the next two-minute fetch job."""

from __future__ import annotations

import asyncio
import signal

import click

from core.cli.common import fail, handle_errors, run, settings


@click.group("service")
def service() -> None:
    """The service desk: inbound mail."""


@service.command("watch-mail")
@click.option("--idle-seconds", default=300, show_default=True, type=click.IntRange(5, 1500),
              help="Re-issue IDLE this often (servers drop idle clients after 29 minutes).")
@click.option("--poll-seconds", default=60, show_default=True, type=click.IntRange(1, 3600),
              help="Without IDLE on the server: fetch this often.")
@click.option("--no-idle", is_flag=True, help="Poll even if the server offers IDLE.")
@handle_errors
def watch_mail(idle_seconds: int, poll_seconds: int, no_idle: bool) -> None:
    """Fetch the support mailbox as mail arrives (CRM_X_SERVICE_IMAP_*), until stopped."""

    async def go() -> None:
        from core.runtime import boot
        from crm_service import mailbox

        rt = await boot(settings())
        cfg = mailbox.configured()
        if cfg is None:
            fail("no mailbox: set CRM_X_SERVICE_IMAP_HOST (and _USER, _PASSWORD)")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"watching {cfg.user}@{cfg.host}:{cfg.port}/{cfg.folder}")
        counts = await mailbox.watch(cfg, stop, own_address=rt.settings.smtp_from, use_idle=False if no_idle else None,
                                     idle_seconds=idle_seconds, poll_seconds=poll_seconds)
        click.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no mail")

    run(go())
