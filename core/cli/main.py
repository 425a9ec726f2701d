"""The ``crm`` entry point: kernel commands plus the ones installed addons contribute."""

from __future__ import annotations

import os
import shlex
import warnings
from pathlib import Path
from typing import Any

import click

from core.cli.addons import addons
from core.cli.backup import backup_cmd, restore_cmd
from core.cli.common import connect, handle_errors, run, settings
from core.cli.jobs import jobs_group
from core.cli.run import scheduler_cmd, serve, worker
from core.cli.users import users_group


class CrmGroup(click.Group):
    """Adds the commands of the installed addons (hook ``crm_cli_commands``) to the kernel's: run by name, and
    listed by ``crm --help`` (which boots on the configured database to find them, once per process)."""

    _found: dict[str, click.Command] | None = None

    def _addon_commands(self) -> dict[str, click.Command]:
        from core import hooks
        from core.runtime import boot

        if self._found is not None:
            return self._found

        async def go() -> list[Any]:
            rt = await boot(settings())
            return await hooks.collect(rt.plugins, "crm_cli_commands")

        self._found = {}
        if _database_exists():
            try:
                commands = run(go())
            except Exception:  # no database yet, or not initialized: the kernel's commands still work
                return self._found
            self._found = {c.name: c for c in commands if isinstance(c, click.Command) and c.name}
        return self._found

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        return found or self._addon_commands().get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._addon_commands()})


def _database_exists() -> bool:
    """False for a SQLite file that is not there (``crm --help`` in a fresh clone must not create one)."""
    from core.settings import configured_database_url

    url = configured_database_url()
    if not url.startswith("sqlite:"):
        return True
    path = url.split("sqlite:///", 1)[-1]
    return path in ("", ":memory:") or Path(path).exists()


@click.group(cls=CrmGroup, epilog="The installed addons' commands are listed once CRM_DATABASE_URL (or a .env "
                                    "file) names an initialized database; `crm demo` prints the line to export.")
@click.version_option(package_name="crm-kernel")
def main() -> None:
    """A modular CRM. Configuration comes from CRM_* environment variables or a .env file."""
    # Piccolo warns (with colour codes) before we can say the same thing in one readable line.
    warnings.filterwarnings("ignore", module="piccolo")


@main.command("init")
@handle_errors
def init() -> None:
    """Create (or migrate) the kernel's tables in the configured database."""
    from core import lifecycle

    async def go() -> list[str]:
        await connect(settings())
        return await lifecycle.ensure_kernel()

    ran = run(go())
    click.echo(f"database ready ({len(ran)} kernel migration(s) applied): {settings().database_url}")


@main.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Prepare the demo database and exit.")
@handle_errors
def demo(host: str, port: int, no_serve: bool) -> None:
    """Create a SQLite demo database with every present addon and demo data, then serve it."""
    from core import demo as demo_setup
    from core.hooks import DemoLogin

    if not os.environ.get("CRM_DATABASE_URL"):
        data_dir = Path(os.environ.get("CRM_DATA_DIR", "var/demo")).resolve()
        os.environ["CRM_DATA_DIR"] = str(data_dir)
        os.environ["CRM_DATABASE_URL"] = f"sqlite:///{data_dir / 'demo.sqlite3'}"

    async def go() -> tuple[list[str], list[demo_setup.DemoUser], list[demo_setup.DemoTeam], list[DemoLogin]]:
        from core.runtime import boot

        await connect(settings())
        installed, users, teams = await demo_setup.setup()
        await boot(settings())  # the installed addons answer crm_demo_logins
        return installed, users, teams, await demo_setup.logins()

    installed, users, teams, others = run(go())
    url = os.environ["CRM_DATABASE_URL"]
    click.echo(f"database: {url}")
    click.echo("addons installed: " + (", ".join(installed) or "already installed"))
    click.echo(f"demo users (password {demo_setup.DEMO_PASSWORD!r}): " + ", ".join(u.login for u in users))
    for team in teams:
        click.echo(f"team {team.name!r}: led by {team.leader}, members " + ", ".join(team.members))
    for other in others:
        click.echo(f"{other.label}: {other.url} — {other.login} / {other.password}")
    click.echo("\nTo use the crm command on this database (in another terminal), export its address:\n"
               f"  export CRM_DATABASE_URL={shlex.quote(url)}\n"
               "  crm --help                                   # the kernel's and the addons' commands\n"
               "  crm contacts import people.csv --as sales_rep --dry-run\n")
    if not no_serve:
        ctx = click.get_current_context()
        ctx.invoke(serve, host=host, port=port, workers=1)


@main.command("doctor")
@handle_errors
def doctor() -> None:
    """Check what this CRM depends on (database, migrations, jobs, scheduler, e-mail, ERP…); exit 1 if any fails."""
    from core import status
    from core.runtime import boot

    async def go() -> status.Report:
        await boot(settings())
        return await status.report()

    found = run(go())
    for check in found.checks:
        mark = "ok  " if check.ok else "FAIL"
        line = f"{mark} {check.label}: {check.detail}"
        click.echo(line + (f" — {check.hint}" if check.hint and not check.ok else ""))
    if not found.ok:
        raise SystemExit(1)


main.add_command(addons)
main.add_command(serve)
main.add_command(worker)
main.add_command(scheduler_cmd, name="scheduler")
main.add_command(jobs_group)
main.add_command(users_group)
main.add_command(backup_cmd)
main.add_command(restore_cmd)
