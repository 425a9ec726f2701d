"""``crm contacts import FILE`` and ``crm contacts dedup-scan`` (thin over the services, with progress bars)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from core.cli.common import fail, handle_errors, run, settings


async def _boot_as(login: str | None) -> Any:
    from core.runtime import boot
    from core.security import context
    from core.security.access import Access, policy
    from core.security.models import User
    from core.security.principal import Principal, load

    await boot(settings())
    if not login:
        # the command line is the operator: act as an administrator, audited as "cli"
        who = Principal(user_id=0, login="cli", name="Command line", language="en", roles=frozenset({"admin"}))
        context.set_context(context.RequestContext(principal=None, request_id="cli"))
        return Access(who)
    row = await User.select(User.id).where(User.login == login).first()
    if row is None:
        fail(f"no user {login!r}")
    principal = await load(int(row["id"]), implied=policy().implied)
    context.set_context(context.RequestContext(principal=principal, request_id="cli"))
    return Access(principal)


@click.group("contacts")
def contacts() -> None:
    """Customer data: import people, scan for duplicates."""


@contacts.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--mode", type=click.Choice(["create", "update", "upsert"]), default="create", show_default=True)
@click.option("--key", "keys", multiple=True, type=click.Choice(["email", "phone", "id"]),
              help="Matching key for update/upsert (repeatable).")
@click.option("--map", "mapping_json", default="", help='Column mapping as JSON, e.g. {"手机": "phone"}.')
@click.option("--as", "login", default=None, help="Import as this user (owner of the new records).")
@click.option("--dry-run", is_flag=True, help="Standardize and check every row, write nothing.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the per-row result as CSV here.")
@click.option("--encoding", default=None, help="Text encoding of a CSV file (default: detected), e.g. cp1252.")
@click.option("--drop-invalid", "drop_invalid", multiple=True, metavar="FIELD",
              help="Leave a bad value of this optional field out (a warning) instead of failing the row (repeatable).")
@click.option("--allow-failures", is_flag=True, help="Exit 0 even when some rows failed.")
@handle_errors
def import_cmd(path: Path, mode: str, keys: tuple[str, ...], mapping_json: str, login: str | None,
               dry_run: bool, report: Path | None, encoding: str | None, drop_invalid: tuple[str, ...],
               allow_failures: bool) -> None:
    """Import people from a CSV or XLSX file.

    Exits 1 when a row failed (each is listed, with --report for all of them), unless --allow-failures."""
    from crm_contacts.importing import Importer, auto_mapping
    from crm_contacts.tabular import detect, is_xlsx, read_table, write_csv

    async def go() -> list[Any]:
        acc = await _boot_as(login)
        content = path.read_bytes()
        used = encoding
        if not is_xlsx(content, path.name):
            used = encoding or detect(content)
            click.echo(f"encoding: {used}" + ("" if encoding else " (detected; --encoding to change)"))
        header, rows = read_table(content, path.name, used)
        mapping = auto_mapping(header) | (json.loads(mapping_json) if mapping_json else {})
        click.echo("mapping: " + ", ".join(f"{k} → {v}" for k, v in mapping.items()))
        importer = Importer(acc, header, rows, mapping, mode, list(keys), drop_invalid=list(drop_invalid))
        with click.progressbar(length=len(rows), label="importing" if not dry_run else "checking") as bar:
            seen = [0]

            def tick(done: int, total: int) -> None:
                bar.update(done - seen[0])
                seen[0] = done

            return await importer.run(dry_run=dry_run, progress=tick)

    results = run(go())
    counts: dict[str, int] = {}
    for r in results:
        counts[r.action] = counts.get(r.action, 0) + 1
    click.echo(("dry run: " if dry_run else "") + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failed = [r for r in results if r.action == "failed"]
    for r in failed[:20]:
        click.echo(f"  row {r.row_no}: {r.message}", err=True)
    for r in [r for r in results if r.action in ("created", "updated") and r.message][:20]:
        click.echo(f"  row {r.row_no}: {r.action}, left out {r.message}", err=True)
    if report:
        report.write_bytes(write_csv(["row", "result", "record_id", "message"],
                                     [[r.row_no, r.action, r.record_id or "", r.message] for r in results]))
    if failed and not allow_failures:
        fail(f"{len(failed)} row(s) failed" + ("" if dry_run else " (the other rows were imported)")
             + "; --allow-failures to accept them")


@contacts.command("dedup-scan")
@handle_errors
def dedup_scan_cmd() -> None:
    """Scan every person for duplicates and store ranked groups for the review page."""
    from crm_contacts.duplicates import scan_people

    async def go() -> tuple[str, int]:
        await _boot_as(None)
        with click.progressbar(length=100, label="scanning") as bar:
            seen = [0]

            def tick(done: int, total: int) -> None:
                pct = int(done * 100 / max(total, 1))
                bar.update(pct - seen[0])
                seen[0] = pct

            return await scan_people(tick)

    scan_id, groups = run(go())
    click.echo(f"scan {scan_id}: {groups} duplicate group(s)")
