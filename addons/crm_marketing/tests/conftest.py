"""Fixtures for crm_marketing tests: the addon booted (without crm_sales) on SQLite and PostgreSQL, a handful of
people with tags, and users for the marketing, sales manager and sales rep roles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from marketing_helpers import World, build_world  # noqa: E402


@pytest.fixture
async def world(crm_boot: Any) -> World:
    runtime = await crm_boot("crm_marketing")
    return await build_world(runtime)
