"""Kernel tests: test-only addons live in tests/fixtures/addons and are declared, not installed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "addons"
sys.path.insert(0, str(FIXTURES))


@pytest.fixture
def found():
    """What discovery would find if the two test addons were installed distributions."""
    from crm_testbase.manifest import ADDON as BASE
    from crm_testext.manifest import ADDON as EXT

    from core.discovery import Discovered

    return Discovered(addons={"crm_testbase": BASE, "crm_testext": EXT})


@pytest.fixture(autouse=True)
def _reset_calls():
    from crm_testbase import actors

    actors.CALLS.clear()
    yield
