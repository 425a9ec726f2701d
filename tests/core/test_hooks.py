"""The kernel's extension points, each through the test addon crm_testext: what a role may read, it sees;
what it may not, it does not — whatever the hook returns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core import datasets, hooks, notifications, portal, records
from core.discovery import Discovered
from core.errors import AddonError, NotFound, PermissionDenied, ValidationError
from core.hooks import Notification, PortalCustomer
from core.search import search
from core.security import principal
from core.security.access import Access, policy
from core.testing import login_client, make_user

NOTE = "crm_testbase.note"
ROOT = Path(__file__).resolve().parents[2]


async def _access(login: str, *roles: str) -> Access:
    uid = await make_user(login, *roles)
    return Access(await principal.load(uid, implied=policy().implied))


async def _notes(owner_a: int, owner_b: int) -> tuple[int, int]:
    from crm_testbase.models import Note

    a = await Note.insert(Note(title="Alpha plan", phone="+8613800138000", internal="x", owner=owner_a)).returning(
        Note.id)
    b = await Note.insert(Note(title="Alpha secret", phone="+8613900139000", owner=owner_b)).returning(Note.id)
    return a[0]["id"], b[0]["id"]


@pytest.fixture
async def booted(crm_boot, found: Discovered):
    return await crm_boot("crm_testext", found=found)


async def test_search_reads_through_access_and_never_matches_masked_values(booted) -> None:
    amy = await _access("amy", "tb_user")
    ben = await _access("ben", "tb_user")
    nobody = await _access("nora")
    mine, _theirs = await _notes(amy.principal.user_id, ben.principal.user_id)
    (group,) = await search(amy, "alpha")
    assert group.kind == "notes" and [h.url for h in group.hits] == [f"/notes/{mine}"]
    assert await search(nobody, "alpha") == []
    # amy sees phones masked: digits of her own note's phone find nothing
    assert await search(amy, "13800138") == []
    with pytest.raises(ValidationError) as short:
        await search(amy, "a")
    assert "q" in short.value.fields


async def test_search_api_groups_hits(crm_client, found: Discovered) -> None:
    from crm_testbase.models import Note

    client = await crm_client("crm_testext", found=found)
    uid = await make_user("cat", "tb_manager")
    await Note.insert(Note(title="Budget 2027", owner=uid))
    await login_client(client, "cat")
    answer = await client.get("/api/search", params={"q": "budget"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["groups"][0]["hits"][0]["title"] == "Budget 2027"
    bad = await client.get("/api/search", params={"q": "budget", "limit": "500"})
    assert bad.status_code == 422 and "limit" in bad.json()["error"]["fields"]
    client.cookies.clear()
    assert (await client.get("/api/search", params={"q": "budget"})).status_code == 401


async def test_datasets_count_only_readable_rows_and_refuse_hidden_or_masked_fields(booted) -> None:
    amy = await _access("amy", "tb_user")
    ben = await _access("ben", "tb_user")
    await _notes(amy.principal.user_id, ben.principal.user_id)
    rows = await datasets.aggregate(amy, "notes", ["owner"], ["count", "version"])
    assert rows == [{"owner": amy.principal.user_id, "count": 1, "version": 1}]
    with pytest.raises(PermissionDenied):
        await datasets.aggregate(amy, "notes", ["internal"], ["count"])  # hidden for tb_user
    with pytest.raises(PermissionDenied):
        await datasets.aggregate(amy, "notes", ["phone"], ["count"])  # masked for tb_user
    with pytest.raises(ValidationError):
        await datasets.aggregate(amy, "notes", ["title"], ["count"])
    with pytest.raises(NotFound):
        await datasets.aggregate(await _access("nora"), "notes", [], ["count"])
    assert [d.key for d in await datasets.datasets(amy)] == ["notes"]


async def test_record_page_shows_actions_panels_and_timeline_for_who_may_see_them(crm_client, found) -> None:
    from crm_testbase.models import Note

    client = await crm_client("crm_testext", found=found)
    uid = await make_user("dan", "tb_user")
    note = (await Note.insert(Note(title="Roadmap", owner=uid)).returning(Note.id))[0]["id"]
    await login_client(client, "dan")
    page = await client.get(f"/notes/{note}")
    assert page.status_code == 200
    assert re.search(rf'action="/notes/{note}/star"[^>]*onsubmit="return confirm\(', page.text)
    assert 'data-action="ext_star"' in page.text and 'name="csrf_token"' in page.text
    # a viewer without read on notes gets nothing from any extension point
    extras = await records.extras(Access(None), NOTE, note, timeline=True)
    assert extras.panels == [] and extras.actions == [] and extras.timeline == []
    dan = Access(await principal.load(uid, implied=policy().implied))
    assert [e.title for e in (await records.extras(dan, NOTE, note, timeline=True)).timeline] == ["Seen: Roadmap"]


async def test_menu_items_hook_adds_entries_for_the_user(crm_client, found: Discovered) -> None:
    client = await crm_client("crm_testext", found=found)
    await make_user("eve", "tb_user")
    await make_user("fay", "auditor")
    await login_client(client, "eve")
    assert 'href="/notes/?starred=1"' in (await client.get("/")).text
    client.cookies.clear()
    await login_client(client, "fay")
    assert "starred=1" not in (await client.get("/")).text


async def test_portal_sections_and_notification_channels(booted) -> None:
    from crm_testext import hooks as ext

    found = await portal.sections(PortalCustomer(person_id=7, email="li@example.com"))
    assert [(s.key, s.context["person"]) for s in found] == [("notes", 7)]
    assert await portal.sections(PortalCustomer(person_id=8, email="x@elsewhere.cn")) == []
    ext.DELIVERED.clear()
    uid = await make_user("gus", "tb_user")
    failed = await notifications.notify(Notification(user_id=uid, title="Quote accepted", url="/notes/1"))
    assert failed == ["chat"] and [n.title for n in ext.DELIVERED] == ["Quote accepted"]
    from core.security.models import AuditLog

    row = await AuditLog.select(AuditLog.detail).where(AuditLog.action == "notify_failed").first()
    assert row is not None and "chat server unreachable" in row["detail"]


async def test_async_api_resources_are_collected_like_sync_ones(crm_boot, found: Discovered) -> None:
    from crm_testbase import hooks as base

    runtime = await crm_boot("crm_testbase", found=found)

    class AsyncResources:
        @hooks.hookimpl
        async def crm_api_resources(self):
            return base.crm_api_resources()

    runtime.plugins.register(AsyncResources())
    resources = await hooks.collect(runtime.plugins, "crm_api_resources")
    assert len(resources) == 2 and all(r.path == "/testbase/notes" for r in resources)


async def test_an_implementation_no_spec_declares_stops_boot(crm_boot, found: Discovered) -> None:
    import dataclasses
    import sys
    import types

    module = types.ModuleType("crm_testbase_typo_hooks")

    @hooks.hookimpl
    def crm_record_panel(access, model, record_id):  # singular: a typo
        return []

    module.crm_record_panel = crm_record_panel
    sys.modules[module.__name__] = module
    broken = dataclasses.replace(found.addons["crm_testbase"], hooks=(module.__name__,))
    with pytest.raises(AddonError, match="crm_record_panel"):
        await crm_boot("crm_testbase", found=Discovered(addons={"crm_testbase": broken}))


def _documented() -> list[str]:
    text = (ROOT / "docs" / "hooks.md").read_text()
    return re.findall(r"^### `(crm_[a-z_]+)`", text, flags=re.M)


def test_every_spec_is_documented_in_order_and_nothing_else() -> None:
    assert _documented() == list(hooks.SPECS)


def test_every_spec_is_called_by_the_kernel() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "core").rglob("*.py") if p.name != "hooks.py")
    uncalled = [name for name in hooks.SPECS if f'"{name}"' not in sources]
    assert uncalled == []
