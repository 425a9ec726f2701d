"""A real trytond that a test can stop and start again on the same port and database: an ERP outage.

``with restartable_server(build_database(), workdir) as (conn, server):`` … ``server.stop()`` (the process is
terminated: connections are refused, calls in flight are cut) … ``server.start()`` (the same port, the same
SQLite file, so every sale made before the outage is still there).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from erp_bridge.testing.tryton_server import (
    _LAUNCHER,
    ADMIN_PASSWORD,
    ADMIN_USER,
    DB_NAME,
    TrytonConnection,
    _wait_ready,
    _write_conf,
    free_port,
)


class TrytonProcess:
    """One trytond on a fixed port and database directory; ``stop()`` and ``start()`` as often as needed."""

    def __init__(self, workdir: Path, port: int, timeout: float = 60) -> None:
        self.workdir, self.port, self.timeout = workdir, port, timeout
        self.conf = _write_conf(workdir, port)
        self.log = workdir / "trytond.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", _LAUNCHER, "-c", str(self.conf), "-d", DB_NAME],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_ready(self.proc, self.port, self.log, self.timeout)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


@contextlib.contextmanager
def restartable_server(db_file: Path, workdir: Path, timeout: float = 60) -> Iterator[tuple[TrytonConnection,
                                                                                           TrytonProcess]]:
    """Copy *db_file* into *workdir*, run trytond on it; yield its connection and its process control."""
    workdir.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm", "-journal"):  # a stale WAL would be replayed onto the copy
        (workdir / f"{DB_NAME}.sqlite{suffix}").unlink(missing_ok=True)
    shutil.copyfile(db_file, workdir / f"{DB_NAME}.sqlite")
    server = TrytonProcess(workdir, free_port(), timeout)
    server.start()
    try:
        yield (TrytonConnection(url=f"http://127.0.0.1:{server.port}/", database=DB_NAME, username=ADMIN_USER,
                                password=ADMIN_PASSWORD), server)
    finally:
        server.stop()
