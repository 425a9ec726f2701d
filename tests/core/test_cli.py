"""The ``crm`` command line, run as a user would: a subprocess, exit codes, one readable line on errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CRM = str(Path(sys.executable).parent / "crm")


def crm(*args: str, env: dict[str, str], input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | env
    return subprocess.run([CRM, *args], capture_output=True, text=True, env=full, timeout=120, input=input_text)


def test_init_users_and_addons_list(crm_db_url: str, tmp_path: Path) -> None:
    env = {"CRM_DATABASE_URL": crm_db_url, "CRM_DATA_DIR": str(tmp_path), "CRM_NEW_PASSWORD": "Sturdy-Lantern-77"}
    result = crm("init", env=env)
    assert result.returncode == 0, result.stderr
    assert "database ready" in result.stdout
    result = crm("users", "create", "root", "--role", "admin", "--name", "Root", env=env)
    assert result.returncode == 0 and "created user root" in result.stdout, result.stderr
    again = crm("users", "create", "root", "--role", "admin", env=env)
    assert again.returncode == 1 and again.stderr.strip() == "error: a user with login 'root' exists already"
    weak = crm("users", "create", "weak", env=env | {"CRM_NEW_PASSWORD": "password1234"})
    assert weak.returncode == 1 and "password: is too easy to guess" in weak.stderr
    listing = crm("addons", "list", env=env)
    assert listing.returncode == 0 and listing.stdout.startswith("addon")


def test_errors_are_one_line_and_non_zero(tmp_path: Path) -> None:
    base = {"CRM_DATA_DIR": str(tmp_path)}
    bad_url = crm("init", env=base | {"CRM_DATABASE_URL": "mysql://x@localhost/db"})
    assert bad_url.returncode == 1
    assert bad_url.stderr.strip().startswith("error: CRM_DATABASE_URL 'mysql://x@localhost/db': unsupported scheme")
    assert "Traceback" not in bad_url.stderr

    down = crm("init", env=base | {"CRM_DATABASE_URL": "postgresql://u:secret@127.0.0.1:1/none"})
    assert down.returncode == 1 and "unreachable" in down.stderr and "secret" not in down.stderr
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1

    db = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    assert crm("init", env=base | {"CRM_DATABASE_URL": db}).returncode == 0
    unknown = crm("addons", "install", "crm_nope", env=base | {"CRM_DATABASE_URL": db})
    assert unknown.returncode == 1 and "error: addon 'crm_nope': unknown addon" in unknown.stderr

    redis_down = crm("worker", env=base | {"CRM_DATABASE_URL": db, "CRM_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert redis_down.returncode == 1
    assert "CRM_REDIS_URL 'redis://127.0.0.1:1/0' is unreachable" in redis_down.stderr

    not_init = crm("jobs", "failed", env=base | {"CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"})
    assert not_init.returncode == 1 and "run `crm init`" in not_init.stderr

    bad_int = crm("init", env=base | {"CRM_DATABASE_URL": db, "CRM_SMTP_PORT": "twenty-five"})
    assert bad_int.returncode == 1 and "CRM_SMTP_PORT: expected a whole number" in bad_int.stderr
