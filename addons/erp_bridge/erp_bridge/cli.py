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
@click.option("--web-url", default=None, help="the ERP's web client, for links from the reconciliation")
@handle_errors
def configure(name: str, kind: str, url: str, database: str, username: str, web_url: str | None) -> None:
    """Create or update backend NAME; the password comes from $CRM_ERP_PASSWORD or a hidden prompt."""
    from erp_bridge import connection

    password = os.environ.get("CRM_ERP_PASSWORD")
    if password is None and kind != "fake":
        password = click.prompt("ERP password", hide_input=True, default="", show_default=False)

    async def go() -> int:
        await _boot()
        return await connection.configure(name, kind, url, database, username, password or "", web_url=web_url)

    click.echo(f"backend {name!r} ({kind}) saved as #{run(go())}")


@erp.command("check")
@handle_errors
def check() -> None:
    """Log in to the configured ERP, print what it says, and compare how it computes a sale with the CRM: tax
    rounding, price digits, currency rounding, and a mapped ERP tax of the same rate for every CRM tax rate in use
    (exit 1 if it cannot be reached or anything differs)."""
    from erp_bridge import sync, taxes
    from erp_bridge.backends.base import ErpError

    async def go() -> tuple[dict[str, Any], list[str]]:
        await _boot()
        return await sync.health(), await taxes.check_erp()

    try:
        result, problems = run(go())
    except ErpError as exc:
        raise click.ClickException(f"ERP check failed: {exc.message}") from None
    click.echo("ok: " + ", ".join(f"{k}={v}" for k, v in result.items() if k != "ok"))
    for problem in problems:
        click.echo(f"mismatch: {problem}")
    if problems:
        raise click.ClickException(f"the CRM and the ERP would not compute or tax sales alike: {len(problems)} "
                                   "mismatch(es) above")
    click.echo("rules: the ERP computes sales like the CRM (taxes per line, unit prices, currencies, tax mapping)")


@erp.group("taxes", invoke_without_command=True)
@click.pass_context
@handle_errors
def taxes_cmd(ctx: click.Context) -> None:
    """The tax mapping (CRM tax rate → ERP tax) beside the ERP's sale taxes and the rates the CRM uses."""
    if ctx.invoked_subcommand is not None:
        return
    from crm_sales.api import tax_rates_in_use

    from erp_bridge import taxes

    async def go() -> tuple[Any, dict[Any, Any], list[Any]]:
        await _boot()
        return await taxes.erp_rules(), await taxes.load(), await tax_rates_in_use()

    from erp_bridge.backends.base import ErpError

    try:
        rules, mapping, in_use = run(go())
    except ErpError as exc:
        raise click.ClickException(f"cannot read the ERP's taxes: {exc.message}") from None
    used = {taxes.key(r) for r in in_use}
    names = {t.external_id: t.name for t in rules.taxes}
    click.echo("CRM rate   ERP tax")
    for rate in sorted(set(mapping) | used):
        mapped = mapping.get(rate)
        target = ("(not mapped)" if mapped is None else "(no tax)" if not mapped.erp_tax else
                  f"#{mapped.erp_tax} {names.get(mapped.erp_tax, '(not in the ERP)')}")
        click.echo(f"{taxes.percent(rate):<10} {target}{'' if rate in used else '  (unused)'}")
    click.echo("ERP sale taxes:")
    for tax in rules.taxes:
        rate = taxes.percent(tax.rate) if tax.rate is not None else tax.kind
        click.echo(f"  #{tax.external_id:<6}{tax.name:<40}{rate}{'  (composite)' if tax.is_composite else ''}")


@taxes_cmd.command("map")
@click.argument("rate")
@click.argument("erp_tax")
@handle_errors
def taxes_map(rate: str, erp_tax: str) -> None:
    """Map CRM tax RATE (a fraction: 0.13) to ERP_TAX: its id, its exact name, or "none" (0 % only)."""
    from core.values import finite_decimal
    from erp_bridge import taxes

    async def go() -> str:
        await _boot()
        wanted = finite_decimal(rate, "rate")
        tax = taxes.resolve(await taxes.erp_rules(), erp_tax)
        if tax is not None and (tax.rate is None or taxes.key(tax.rate) != taxes.key(wanted)):
            raise click.ClickException(f"ERP tax #{tax.external_id} {tax.name!r} is not a {rate} tax")
        await taxes.set_mapping(rate, tax.external_id if tax else "", tax.name if tax else "")
        return f"#{tax.external_id} {tax.name}" if tax else "no tax"

    from erp_bridge.backends.base import ErpError

    try:
        click.echo(f"{rate} → {run(go())}")
    except ErpError as exc:
        raise click.ClickException(f"cannot read the ERP's taxes: {exc.message}") from None


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
    stats = result.get("stats") or {}
    click.echo(f"reconciliation #{result['run_id']}: {result['lines']} line(s) in {stats.get('seconds', 0):.1f} s "
               f"({stats.get('erp_seconds', 0):.1f} s waiting for the ERP)")
    for name, n in result["counts"].items():
        click.echo(f"  {name:<18}{n}")
