"""Fixtures for crm_contacts tests: the addon (plus a test-only probe addon) on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))


@pytest.fixture
def found() -> Any:
    """What discovery finds, plus the probe addon declared as if it were an installed distribution."""
    from crm_contacts_probe.manifest import ADDON as PROBE

    from core.discovery import discover

    out = discover()
    out.addons = {**out.addons, "crm_contacts_probe": PROBE}
    return out


@pytest.fixture
async def api(crm_client: Any, found: Any) -> Any:
    """``client, token_for = api``: an app with crm_contacts + probe; ``await token_for(login, *roles)``."""
    from core.security.sessions import create_token
    from core.testing import make_user

    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)

    async def token_for(login: str, *roles: str, **kw: Any) -> dict[str, str]:
        user_id = await make_user(login, *roles, **kw)
        secret = await create_token(user_id, "test", roles=list(roles))
        return {"Authorization": f"Bearer {secret}", "X-User-Id": str(user_id)}

    return client, token_for


@pytest.fixture
async def booted(crm_boot: Any, found: Any) -> Any:
    """Install crm_contacts + probe; ``await as_user(login, *roles)`` gives that new user's ``Access``."""
    from core.security import context
    from core.security.access import Access, policy
    from core.security.principal import load
    from core.testing import make_user

    runtime = await crm_boot("crm_contacts", "crm_contacts_probe", found=found)

    async def as_user(login: str, *roles: str) -> Access:
        user_id = await make_user(login, *roles)
        who = await load(user_id, implied=policy().implied)
        context.set_context(context.RequestContext(principal=who, request_id="test"))
        return Access(who)

    runtime.state["as_user"] = as_user
    return as_user
