"""Fixtures for crm_reports tests: crm_sales (a dataset provider) and crm_reports booted with generated deals."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from reports_helpers import Org, build_org  # noqa: E402


@pytest.fixture
async def org(crm_boot: Any) -> Org:
    runtime = await crm_boot("crm_sales", "crm_reports")
    return await build_org(runtime)
