"""The example third-party addon, end to end: pip install, discover, install into a database, use it."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.testing import login_client, make_user

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "crm_loyalty"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """A real (non-editable) pip install of the example, removed again afterwards. Built from a clean copy:
    an in-tree build would leave build/ and egg-info in docs/examples, and a stale build/lib can ship files
    the example no longer has."""
    source = tmp_path_factory.mktemp("example") / "crm_loyalty"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build", "dist"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    str(source)], check=True, capture_output=True)
    importlib.invalidate_caches()
    yield
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "crm-loyalty"], check=True,
                   capture_output=True)
    for name in [m for m in sys.modules if m.startswith("crm_loyalty")]:
        del sys.modules[name]


async def test_pip_installed_addon_is_discovered_installed_served_and_prints(
        installed_example, crm_client, tmp_path) -> None:
    from core.discovery import discover

    found = discover()
    assert "crm_loyalty" in found.addons, found.errors
    assert found.distributions["crm_loyalty"] == "crm-loyalty"
    import crm_loyalty

    assert "site-packages" in crm_loyalty.__file__  # the installed copy, not the source tree

    client = await crm_client("crm_loyalty", found=found)
    await make_user("lou", "loyalty_clerk")
    await login_client(client, "lou")
    home = await client.get("/")
    assert 'href="/loyalty/"' in home.text and "Reward your best customers." in home.text
    page = await client.get("/loyalty/")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    assert (await client.post("/loyalty/", data={"customer": "王小明", "csrf_token": token})).status_code == 303
    from crm_loyalty.models import Account

    account_id = (await Account.select(Account.id).first())["id"]
    response = await client.post(f"/loyalty/{account_id}/award", data={"points": "1200", "csrf_token": token})
    assert response.status_code == 303
    page = await client.get("/loyalty/")
    assert "王小明" in page.text and "1200" in page.text and "Silver" in page.text
    assert "Accounts: 1" in (await client.get("/")).text  # the widget's context, read through Access

    bad = await client.post(f"/loyalty/{account_id}/award", data={"points": "lots", "csrf_token": token})
    assert bad.status_code == 422 and "must be a whole number" in bad.text

    pdf = await client.get(f"/loyalty/{account_id}/statement.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    path = tmp_path / "statement.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "Loyalty statement" in text and "王小明" in text and "1200" in text
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert any(name in fonts for name in ("WenQuanYi", "NotoSansCJK", "Noto Sans CJK")), fonts

    api = await client.get("/api/loyalty/accounts")
    assert api.status_code == 200 and api.json()["items"][0]["points"] == 1200


async def test_worker_and_scheduler_processes_on_redis(installed_example, crm_db_url, tmp_path) -> None:
    """Production mode: `crm worker` and `crm scheduler` as real processes on the real Redis."""
    import asyncio
    import os
    import time

    import redis

    from core import jobs, lifecycle
    from core.discovery import discover
    from core.models import Outbox
    from core.runtime import boot
    from core.settings import Settings

    redis_url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(redis_url).flushdb()
    found = discover()
    await lifecycle.install(["crm_loyalty"], found)
    settings = Settings(data_dir=tmp_path, database_url=crm_db_url, redis_url=redis_url, secret_key="s")
    await boot(settings, found=found)
    from crm_loyalty.models import Account

    rows = await Account.insert(Account(customer="Acme")).returning(Account.id)
    account_id = rows[0]["id"]
    job_ids = [await jobs.enqueue("crm_loyalty.award_points", account_id=account_id, points=10,
                                  dedup_key=f"order-{i}") for i in range(20)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATABASE_URL": crm_db_url, "CRM_REDIS_URL": redis_url, "CRM_DATA_DIR": str(tmp_path)}
    crm = str(Path(sys.executable).parent / "crm")
    procs = [subprocess.Popen([crm, "worker", "--threads", "2"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE),
             subprocess.Popen([crm, "scheduler"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = await Outbox.count().where(Outbox.id.is_in(job_ids) & (Outbox.state == "done"))
            ticked = await Outbox.count().where(Outbox.actor == "crm_loyalty.expire_points")
            if done == len(job_ids) and ticked >= 1:
                break
            await asyncio.sleep(0.2)
        assert done == len(job_ids), [p.poll() for p in procs]
        assert ticked >= 1
        assert (await Account.select(Account.points).where(Account.id == account_id).first())["points"] == 200
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
