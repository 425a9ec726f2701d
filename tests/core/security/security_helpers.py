"""Small helpers shared by the security tests."""

from __future__ import annotations

import json
import re
from typing import Any

from core.testing import csrf_of, login_client

PASSWORD = "Correct-Horse-42!"

#: note key → (owner, phone, internal, archived)
NOTES = {
    "amy1": ("amy", "13811112222", "amy-internal", False),
    "amy_old": ("amy", "13800000000", "amy-archived", True),
    "bob1": ("bob", "13833334444", "bob-internal", False),
    "carl1": ("carl", "13855556666", "carl-internal", False),
    "dan1": ("dan", "13877778888", "dan-internal", False),
    "mia1": ("mia", "13899990000", "mia-internal", False),
    "lee1": ("lee", "13812121212", "lee-internal", False),
    "ola1": ("ola", "13834343434", "ola-internal", False),
}


async def sign_in(client: Any, login: str, password: str = PASSWORD) -> str:
    """Log ``client`` in as ``login`` (dropping any previous session); returns the session's CSRF token."""
    client.cookies.clear()
    await login_client(client, login, password)
    home = await client.get("/")
    assert home.status_code == 200, home.text[:300]
    return csrf_of(home.text)


def list_titles(html: str) -> list[str]:
    return re.findall(r'<li class="note">(note \w+|Welcome note) ', html)


async def audit_rows(**where: Any) -> list[dict[str, Any]]:
    from core.security.models import AuditLog

    query = AuditLog.select().order_by(AuditLog.id)
    for name, value in where.items():
        query = query.where(AuditLog._meta.get_column_by_name(name) == value)
    rows = list(await query)
    for row in rows:
        if isinstance(row["changes"], str):
            row["changes"] = json.loads(row["changes"])
    return rows
