"""``crm addons …``: list, install, upgrade, uninstall, makemigrations."""

from __future__ import annotations

import click

from core import lifecycle
from core.cli.common import connect, handle_errors, run, settings
from core.discovery import discover
from core.errors import AddonError


@click.group("addons")
def addons() -> None:
    """Manage the addons of this database."""


@addons.command("list")
@handle_errors
def list_addons() -> None:
    """Present addons and what this database has installed."""
    found = discover()

    async def go() -> dict[str, str]:
        await connect(settings())
        try:
            return await lifecycle.installed()
        except Exception:
            return {}

    installed = run(go())
    click.echo(f"{'addon':<24}{'present':<12}{'installed':<12}summary")
    for name in sorted(set(found.addons) | set(installed) | set(found.errors)):
        addon = found.addons.get(name)
        present = addon.version if addon else ("BROKEN" if name in found.errors else "-")
        summary = addon.summary if addon else found.errors.get(name, "code not present")
        click.echo(f"{name:<24}{present:<12}{installed.get(name, '-'):<12}{summary}")


@addons.command("install")
@click.argument("names", nargs=-1, required=True)
@click.option("--demo", is_flag=True, help="Also load the addons' demo data.")
@handle_errors
def install(names: tuple[str, ...], demo: bool) -> None:
    """Install NAMES and the dependencies they miss."""
    found = discover()

    async def go() -> list[str]:
        await connect(settings())
        return await lifecycle.install(list(names), found, demo=demo)

    done = run(go())
    click.echo("installed: " + (", ".join(done) if done else "nothing new"))


@addons.command("upgrade")
@click.argument("names", nargs=-1)
@handle_errors
def upgrade(names: tuple[str, ...]) -> None:
    """Run pending migrations and data updates (all installed addons when no NAMES)."""
    found = discover()

    async def go() -> list[str]:
        await connect(settings())
        return await lifecycle.upgrade(list(names) or None, found)

    done = run(go())
    click.echo("upgraded: " + (", ".join(done) if done else "nothing to do"))


@addons.command("uninstall")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show what would be done, change nothing.")
@click.option("--purge", is_flag=True, help="Also drop the addon's tables and data.")
@handle_errors
def uninstall(name: str, dry_run: bool, purge: bool) -> None:
    """Uninstall NAME (its data is kept unless --purge)."""
    found = discover()

    async def go() -> lifecycle.Plan:
        await connect(settings())
        return await lifecycle.uninstall(name, found, purge=purge, dry_run=dry_run)

    plan = run(go())
    prefix = "would uninstall" if dry_run else "uninstalled"
    click.echo(f"{prefix}: {plan.addon}")
    if plan.purge:
        click.echo(("would drop" if dry_run else "dropped") + " tables: " + (", ".join(plan.tables) or "none"))
    else:
        click.echo("data kept (use --purge to drop the addon's tables)")


@addons.command("makemigrations")
@click.argument("name")
@click.option("--desc", default="", help="A description for the migration.")
@handle_errors
def makemigrations(name: str, desc: str) -> None:
    """Write a Piccolo auto-migration for addon NAME (or 'core') from its current tables."""
    from piccolo.apps.migrations.commands.new import new

    found = discover()
    if name != "core":
        addon = found.require(name)
        if not addon.migrations:
            raise AddonError(name, "declares no migrations package")

    async def go() -> None:
        await connect(settings())
        from core.migrations_registry import app_registry

        app_registry()
        await new(app_name=name, auto=True, desc=desc, auto_input="y")

    run(go())
