"""A real CRM (``crm demo``) in a subprocess and Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, crm_process


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``crm demo`` on a fresh data dir, as a user would start it; stopped at the end."""
    started = time.perf_counter()
    with crm_process(tmp_path_factory.mktemp("demo"), "demo", timeout=180) as url:
        print(f"\ncrm demo ready in {time.perf_counter() - started:.1f}s")
        yield url


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, and the async tests
# collected after these would find it running.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
