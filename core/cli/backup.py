"""``crm backup FILE`` and ``crm restore FILE``: the whole database (see :mod:`core.backup`)."""

from __future__ import annotations

import time

import click

from core.cli.common import fail, handle_errors, settings


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False))
@handle_errors
def backup_cmd(file: str) -> None:
    """Write a backup of the database to FILE (SQLite: online backup; PostgreSQL: pg_dump custom format)."""
    from core import backup
    from core.db import redact

    url = settings().database_url
    started = time.monotonic()
    path = backup.backup(url, file)
    click.echo(f"backed up {redact(url)} to {path} ({path.stat().st_size:,} bytes, {time.monotonic() - started:.1f} s)")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--yes", is_flag=True, help="Confirm: the database's current content is replaced.")
@handle_errors
def restore_cmd(file: str, yes: bool) -> None:
    """Replace the database by the backup in FILE (stop web processes, workers and schedulers first)."""
    from core import backup
    from core.db import redact

    if not yes:
        fail(
            "restore replaces everything in the database: stop the CRM's processes, then run it again with --yes",
            code=2,
        )
    url = settings().database_url
    started = time.monotonic()
    backup.restore(url, file)
    click.echo(
        f"restored {redact(url)} from {file} ({time.monotonic() - started:.1f} s); "
        "run `crm addons upgrade` if the backup is older than the code"
    )
