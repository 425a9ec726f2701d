"""A real CRM (``crm demo``) in a subprocess and Debian's Chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.testing import CHROMIUM, CHROMIUM_ARGS, free_port


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``crm demo`` on a fresh data dir, as a user would start it; stopped at the end."""
    data = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {"CRM_DATA_DIR": str(data)}
    crm = str(Path(sys.executable).parent / "crm")
    log = open(data / "server.log", "w")  # noqa: SIM115 - closed below
    started = time.perf_counter()
    proc = subprocess.Popen([crm, "demo", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"crm demo exited: {(data / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise AssertionError("crm demo did not come up in 180 s")
        print(f"\ncrm demo ready in {time.perf_counter() - started:.1f}s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# Module scope: Playwright's sync API runs an event loop in this thread while it is open, and the async tests
# collected after these would find it running.
@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()
