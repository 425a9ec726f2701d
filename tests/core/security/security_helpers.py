"""Small helpers shared by the security tests."""

from __future__ import annotations

import json
import re
from typing import Any

from core.testing import csrf_of, login_client

PASSWORD = "Correct-Horse-42!"


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
