"""Fixtures for crm_marketing tests: the addon booted (without crm_sales) on SQLite and PostgreSQL, a handful of
people with tags, and users for the marketing, sales manager and sales rep roles."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from aiosmtpd.controller import Controller  # noqa: E402
from marketing_helpers import Sink, World, build_world  # noqa: E402

from core.testing import free_port  # noqa: E402


@pytest.fixture
async def world(crm_boot: Any) -> World:
    runtime = await crm_boot("crm_marketing")
    return await build_world(runtime)


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    """A local SMTP server (aiosmtpd) keeping what it receives, and its port."""
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()
