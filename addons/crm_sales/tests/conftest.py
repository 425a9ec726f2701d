"""Fixtures for crm_sales tests: the addon booted on SQLite and PostgreSQL with a small sales organisation."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# sales_helpers beside this file, for tests collected with --import-mode=importlib.
sys.path.insert(0, str(Path(__file__).parent))
from sales_helpers import Org, build_org  # noqa: E402


@pytest.fixture
async def org(crm_boot: Any) -> Org:
    runtime = await crm_boot("crm_sales")
    return await build_org(runtime)
