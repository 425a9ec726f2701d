"""``crm erp …``: configure the backend, check it, re-drive failed syncs, pull, reconcile."""

from __future__ import annotations

import os
from typing import Any

import click

from core.cli.common import handle_errors, run, settings


async def _boot() -> None:
    from core.runtime import boot

    await boot(settings())


@click.group("erp")
def erp() -> None:
    """Sync with the ERP and reconcile (erp_bridge)."""


@erp.command("configure")
@click.argument("name")
@click.option("--kind", default="tryton", show_default=True, help="a crm.erp_backends entry point")
@click.option("--url", default="")
@click.option("--database", default="")
@click.option("--username", default="")
@handle_errors
def configure(name: str, kind: str, url: str, database: str, username: str) -> None:
    """Create or update backend NAME; the password comes from $CRM_ERP_PASSWORD or a hidden prompt."""
    from erp_bridge import connection

    password = os.environ.get("CRM_ERP_PASSWORD")
    if password is None and kind != "fake":
        password = click.prompt("ERP password", hide_input=True, default="", show_default=False)

    async def go() -> int:
        await _boot()
        return await connection.configure(name, kind, url, database, username, password or "")

    click.echo(f"backend {name!r} ({kind}) saved as #{run(go())}")


@erp.command("check")
@handle_errors
def check() -> None:
    """Log in to the configured ERP and print what it says (exit 1 if it cannot be reached)."""
    from erp_bridge import sync
    from erp_bridge.backends.base import ErpError

    async def go() -> dict[str, Any]:
        await _boot()
        return await sync.health()

    try:
        result = run(go())
    except ErpError as exc:
        raise click.ClickException(f"ERP check failed: {exc.message}") from None
    click.echo("ok: " + ", ".join(f"{k}={v}" for k, v in result.items() if k != "ok"))


@erp.command("sync")
@click.option("--retry-failed", is_flag=True, help="Re-drive every failed sync.")
@click.option("--pull", is_flag=True, help="Pull invoices and payments now.")
@handle_errors
def sync_cmd(retry_failed: bool, pull: bool) -> None:
    """Show failed syncs; re-drive them (--retry-failed) or pull invoices (--pull)."""
    from erp_bridge import status, sync

    async def go() -> None:
        await _boot()
        if retry_failed:
            click.echo(f"re-driven: {await status.redrive_all()}")
        if pull:
            click.echo(f"invoices pulled: {await sync.pull_invoices()}")
        for row in await status.failed():
            click.echo(f"#{row['id']:<7}{row['reference']:<16}{row['operation']:<8}{row['last_error']}")

    run(go())


@erp.command("reconcile")
@handle_errors
def reconcile_cmd() -> None:
    """Run a reconciliation now and print the totals per status."""
    from erp_bridge import reconcile

    async def go() -> dict[str, Any]:
        await _boot()
        return await reconcile.run(trigger="cli")

    result = run(go())
    click.echo(f"reconciliation #{result['run_id']}: {result['lines']} line(s)")
    for name, n in result["counts"].items():
        click.echo(f"  {name:<18}{n}")
