"""``crm jobs …``: the dead-letter list and re-driving it."""

from __future__ import annotations

import click

from core import outbox
from core.cli.common import handle_errors, run, settings
from core.runtime import boot


@click.group("jobs")
def jobs_group() -> None:
    """Inspect and re-drive background jobs."""


@jobs_group.command("failed")
@handle_errors
def failed() -> None:
    """List jobs that failed for good."""

    async def go() -> list[dict[str, object]]:
        await boot(settings())
        return await outbox.failed()

    rows = run(go())
    if not rows:
        click.echo("no failed jobs")
    for row in rows:
        click.echo(f"#{row['id']:<8}{row['actor']:<36}attempts={row['attempts']:<4}{row['last_error']}")


@jobs_group.command("retry")
@click.argument("ids", nargs=-1, type=int)
@handle_errors
def retry(ids: tuple[int, ...]) -> None:
    """Re-drive failed jobs (all of them when no IDS)."""

    async def go() -> int:
        await boot(settings())
        return await outbox.retry(list(ids) or None)

    click.echo(f"re-driven: {run(go())}")
