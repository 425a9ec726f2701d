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


@pytest.fixture(scope="session")
def dovecot() -> Any:
    """A real IMAP server (Debian's dovecot-imapd) on 127.0.0.1 with a throwaway mail dir; any login, password
    ``secret``. Yields ``(host, port)``."""
    import shutil
    import socket
    import subprocess
    import tempfile
    import time

    from core.testing import free_port

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    assert Path(binary).exists(), "dovecot is not installed: deploy/setup.sh --test installs dovecot-imapd"
    # not under pytest's tmp dir: that is 0700 root, and Dovecot reads the mail as the dovecot user
    root = Path(tempfile.mkdtemp(prefix="crm-dovecot-"))
    root.chmod(0o711)
    (root / "mail").mkdir()
    shutil.chown(root / "mail", "dovecot", "dovecot")
    port = free_port()
    conf = root / "dovecot.conf"
    conf.write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
first_valid_uid = 100
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  user = dovenull
  chroot =
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = static
  args = password=secret
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
""")
    proc = subprocess.Popen([binary, "-c", str(conf), "-F"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"dovecot did not start: {proc.stderr.read() if proc.stderr else b''!r}") from None
            time.sleep(0.1)
    yield ("127.0.0.1", port)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(root, ignore_errors=True)
