"""System status for admins (page and ``crm doctor``), the failed-jobs page, and banners where an action needs
something that is not configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.discovery import Discovered, discover
from core.models import Outbox
from core.testing import csrf_of, free_port, login_client, make_user


async def test_status_page_lists_checks_for_admins_only(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testbase", found=found)
    await make_user("root", "admin")
    await make_user("amy", "tb_user")
    await Outbox.insert(Outbox(actor="crm_testbase.doomed", state="failed", attempts=3, last_error="the ERP says no"))
    await login_client(client, "amy")
    assert (await client.get("/admin/status")).status_code == 403
    assert (await client.get("/admin/jobs")).status_code == 403
    client.cookies.clear()
    await login_client(client, "root")
    page = await client.get("/admin/status")
    assert page.status_code == 200
    for key in ("database", "migrations", "broker", "failed_jobs", "backlog", "scheduler", "smtp"):
        assert f'data-check="{key}"' in page.text, key
    assert 'class="check-failing" data-check="failed_jobs"' in page.text
    assert 'class="check-failing" data-check="smtp"' in page.text and "CRM_SMTP_HOST" in page.text
    jobs = await client.get("/admin/jobs")
    assert "the ERP says no" in jobs.text
    retried = await client.post("/admin/jobs/retry", data={"csrf_token": csrf_of(jobs.text)})
    assert retried.status_code == 303
    assert await Outbox.count().where(Outbox.state == "failed") == 0


async def test_smtp_check_probes_the_server_when_configured(crm_boot, found: Discovered) -> None:
    from aiosmtpd.controller import Controller

    from core import status
    from core.runtime import current

    class Sink:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
            return "250 OK"

    await crm_boot("crm_testbase", found=found)
    runtime = current()
    runtime.settings = runtime.settings.with_(smtp_host="127.0.0.1", smtp_port=1)
    down = {c.key: c for c in (await status.report()).checks}["smtp"]
    assert not down.ok and "127.0.0.1:1" in down.detail
    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runtime.settings = runtime.settings.with_(smtp_port=port)
        up = {c.key: c for c in (await status.report()).checks}["smtp"]
        assert up.ok, up.detail
    finally:
        controller.stop()


async def test_erp_check_and_banner_follow_the_configuration(crm_client) -> None:
    from erp_bridge import connection

    client = await crm_client("erp_bridge", found=discover())
    await make_user("root", "admin")
    await login_client(client, "root")
    page = await client.get("/erp/failed")
    assert 'data-banner="erp_bridge"' in page.text and "crm erp configure" in page.text
    status_page = await client.get("/admin/status")
    assert 'class="check-failing" data-check="erp_bridge"' in status_page.text
    await connection.configure("main", "fake")
    page = await client.get("/erp/failed")
    assert 'data-banner="erp_bridge"' not in page.text
    status_page = await client.get("/admin/status")
    assert 'class="check-ok" data-check="erp_bridge"' in status_page.text
    quotes = await client.get("/sales/quotes")
    assert 'data-banner="smtp"' in quotes.text


def test_crm_doctor_prints_every_check_and_fails_when_one_fails(crm_db_url: str, tmp_path: Path) -> None:
    crm = str(Path(sys.executable).parent / "crm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_DATABASE_URL": crm_db_url, "CRM_DATA_DIR": str(tmp_path)}
    done = subprocess.run([crm, "doctor"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("ok   Database") for line in lines), done.stdout
    assert any(line.startswith("FAIL E-mail (SMTP): not configured") for line in lines), done.stdout
