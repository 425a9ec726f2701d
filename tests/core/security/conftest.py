"""Security test support: a test addon (crm_sectest) over crm_testbase, a cheap password hasher, and a "world"
of users, teams and notes whose visible sets per role are known in advance."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "addons"))
sys.path.insert(0, str(Path(__file__).parent))  # security_helpers, under --import-mode=importlib
from security_helpers import NOTES  # noqa: E402

PASSWORD = "Correct-Horse-42!"


@pytest.fixture
def found():
    from crm_sectest.manifest import ADDON as SECTEST
    from crm_testbase.manifest import ADDON as BASE

    from core.discovery import Discovered

    return Discovered(addons={"crm_testbase": BASE, "crm_sectest": SECTEST})


@dataclass
class World:
    users: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)  # key → id; key "welcome" is the seeded note
    owner_of: dict[str, str | None] = field(default_factory=dict)

    def ids(self, *keys: str) -> set[int]:
        return {self.notes[k] for k in keys}


#: login → roles. Teams: T1 led by lee (amy, bob, mia); T2 led by bob (dan); T3 led by ola (carl).
PEOPLE = {
    "amy": ("tb_user",), "bob": ("tb_user",), "carl": ("tb_user",), "dan": ("tb_user",),
    "mia": ("tb_manager",), "lee": ("st_lead",), "ola": ("tb_user", "st_lead"),
    "ro": ("readonly",), "aud": ("auditor",), "root": ("admin",),
}


async def build_world() -> World:
    from crm_testbase.models import Note

    from core.security import users
    from core.testing import make_user

    world = World()
    for login, roles in PEOPLE.items():
        world.users[login] = await make_user(login, *roles)
    u = world.users
    await users.create_team("T1", leader=u["lee"], members=[u["amy"], u["bob"], u["mia"]])
    await users.create_team("T2", leader=u["bob"], members=[u["dan"]])
    await users.create_team("T3", leader=u["ola"], members=[u["carl"]])
    welcome = await Note.select(Note.id).where(Note.title == "Welcome note").first()
    world.notes["welcome"] = welcome["id"]
    world.owner_of["welcome"] = None
    for key, (owner, phone, internal, archived) in NOTES.items():
        rows = await Note.insert(Note(title=f"note {key}", phone=phone, internal=internal, owner=u[owner],
                                      is_archived=archived)).returning(Note.id)
        world.notes[key] = rows[0]["id"]
        world.owner_of[key] = owner
    return world


@pytest.fixture
async def world_client(crm_client, found):
    """(client, world): crm_testbase + crm_sectest installed, the world built."""
    client = await crm_client("crm_sectest", found=found)
    async with pooled():
        yield client, await build_world()


@contextlib.asynccontextmanager
async def pooled():
    """A connection pool on PostgreSQL for the test's duration (Piccolo connects per query without one)."""
    from core import db

    engine = db.current()
    if not db.is_postgres(engine):
        yield
        return
    await engine.start_connection_pool(min_size=1, max_size=4)
    try:
        yield
    finally:
        await engine.close_connection_pool()
