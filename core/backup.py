"""Backups of the whole database (every addon's tables live in it): SQLite through its online backup API, which
copies a consistent snapshot while the CRM keeps running; PostgreSQL through ``pg_dump`` in its custom format
(``pg_restore`` reads it back). A backup is written next to its target and renamed into place, so a failed run
never leaves a half-written file under the name asked for; a restore is one transaction (SQLite: one backup
step; PostgreSQL: ``pg_restore --single-transaction --exit-on-error``), so a failed restore changes nothing.

Stop the web processes, workers and schedulers before a restore: they hold caches of what they read."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from core.errors import ConfigError, CrmError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"


class BackupError(CrmError):
    status = 500
    code = "backup_failed"


def _sqlite_path(url: str) -> Path:
    return Path(url.split(":///", 1)[1])


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _libpq(url: str) -> str:
    """The URL as libpq reads it (without our own ``statement_cache_size`` option)."""
    from core.db import pg_dsn

    return pg_dsn(url)[0]


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed (Debian: postgresql-client, the server's major version or newer)")
    return found


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise BackupError(f"{what} failed: {lines[-1] if lines else f'exit code {done.returncode}'}")


def backup(url: str, target: str | os.PathLike[str]) -> Path:
    """Write a backup of the database at ``url`` to ``target``; returns its path."""
    path = Path(target).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        if _is_sqlite(url):
            source_path = _sqlite_path(url)
            if not source_path.exists():
                raise ConfigError(f"no SQLite database at {source_path}")
            source = sqlite3.connect(source_path)
            copy = sqlite3.connect(partial)
            try:
                with copy:
                    source.backup(copy)  # a consistent snapshot, even while others write
            finally:
                copy.close()
                source.close()
        else:
            _run(
                [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={_libpq(url)}"],
                "pg_dump",
            )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def kind_of(path: Path) -> str:
    """``sqlite`` or ``postgres`` from the file's first bytes, or a readable error."""
    if not path.is_file():
        raise ConfigError(f"no backup file at {path}")
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgres"
    raise ConfigError(f"{path} is neither a SQLite database nor a pg_dump custom-format archive")


def restore(url: str, source: str | os.PathLike[str]) -> None:
    """Replace the database at ``url`` by the backup in ``source`` (made by :func:`backup` for the same kind of
    database). All or nothing."""
    path = Path(source).resolve()
    kind = kind_of(path)
    wanted = "sqlite" if _is_sqlite(url) else "postgres"
    if kind != wanted:
        raise ConfigError(f"{path} is a {kind} backup but CRM_DATABASE_URL is a {wanted} database")
    if kind == "sqlite":
        backup_db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            check = backup_db.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise ConfigError(f"{path} is damaged: {check[0] if check else 'unreadable'}")
            if not backup_db.execute("SELECT 1 FROM sqlite_master WHERE name = 'core_addon'").fetchone():
                raise ConfigError(f"{path} is a SQLite database but not a CRM backup (no core_addon table)")
            target_path = _sqlite_path(url)
            target_path.parent.mkdir(parents=True, exist_ok=True)
            target = sqlite3.connect(target_path, timeout=30)
            try:
                backup_db.backup(target)  # one step: readers see the old database or the new one
            finally:
                target.close()
        finally:
            backup_db.close()
        return
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={_libpq(url)}",
            str(path),
        ],
        "pg_restore",
    )
