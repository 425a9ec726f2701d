"""Fixtures for crm_service tests: the addon booted on SQLite and PostgreSQL with a small service desk."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# service_helpers beside this file, for tests collected with --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
from service_helpers import Desk, build_desk  # noqa: E402


@pytest.fixture
async def desk(crm_boot: Any) -> Desk:
    runtime = await crm_boot("crm_service")
    return await build_desk(runtime)

# the ``dovecot`` fixture (a real IMAP server) comes from core.testing
