"""Fixtures: one cached Tryton database per session, one fresh trytond per test."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from erp_bridge.backends.fake import FakeBackend
from erp_bridge.backends.tryton import TrytonBackend
from erp_bridge.testing.tryton_server import TrytonConnection, build_database, running_server

# The helper modules beside this file, for tests collected with --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
from erp_helpers import boot_bridge  # noqa: E402
from erp_payloads import TIMINGS, record_timing  # noqa: E402


@pytest.fixture
async def fake(crm_boot: Any) -> FakeBackend:
    """erp_bridge installed and configured with the in-memory backend."""
    backend = FakeBackend()
    await boot_bridge(crm_boot, backend)
    return backend


@pytest.fixture(scope="session")
def tryton_db() -> Path:
    started = time.monotonic()
    path = build_database()  # cached; loud TrytonBuildError if it cannot be built
    record_timing("db build or cache hit", time.monotonic() - started)
    return path


@pytest.fixture
def tryton(tryton_db: Path, tmp_path: Path) -> Iterator[TrytonConnection]:
    started = time.monotonic()
    with running_server(tryton_db, tmp_path / "tryton") as conn:
        record_timing("server start", time.monotonic() - started)
        yield conn


@pytest.fixture
def backend(tryton: TrytonConnection) -> Iterator[TrytonBackend]:
    b = TrytonBackend(tryton.url, tryton.database, tryton.username, tryton.password, timeout=30)
    yield b
    b.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("erp_bridge timings")
    for name, values in TIMINGS.items():
        terminalreporter.write_line(
            f"{name}: n={len(values)} min={min(values):.3f}s max={max(values):.3f}s "
            f"mean={sum(values) / len(values):.3f}s"
        )
