"""The addon contract has teeth: each of its checks fails on ``crm_testbroken``, a fixture addon that breaks
the rule it checks, with a message naming the fault; the whole contract passes on ``crm_testbase``."""

from __future__ import annotations

from typing import Any

import pytest

from core.discovery import Discovered
from core.testing import AddonContract


class _Fixtures:
    def _found(self) -> Discovered:
        from crm_testbase.manifest import ADDON as BASE
        from crm_testbroken.manifest import ADDON as BROKEN
        from crm_testext.manifest import ADDON as EXT

        return Discovered(addons={a.name: a for a in (BASE, EXT, BROKEN)})


class TestFixtureContract(_Fixtures, AddonContract):
    """The contract itself, on the kernel's test addon: what passes here is what the addons must do."""

    addon = "crm_testbase"


class _Broken(_Fixtures, AddonContract):
    addon = "crm_testbroken"


async def _fails(check: Any, *args: Any) -> str:
    with pytest.raises(AssertionError) as failed:
        result = check(*args)
        if hasattr(result, "__await__"):
            await result
    return str(failed.value)


async def test_a_grant_field_rule_menu_or_role_naming_nothing_fails() -> None:
    text = await _fails(_Broken().test_policy_names_defined_models_and_declared_roles)
    for fault in ("model 'crm_testbsae.note'", "model 'crm_testbroken.itme'", "role 'tb_usr'",
                  "field 'colour'", "menu 'Items' names model 'crm_testbroken.items'", "implies 'tx_boss'"):
        assert fault in text
    assert "'crm_testbroken.item'," not in text  # the table defines it


async def test_a_hook_implementation_without_a_spec_fails() -> None:
    text = await _fails(_Broken().test_hooks_match_specs)
    assert "crm_testbase_note_deleted implements no hook" in text  # optional, yet no present addon emits it
    assert "crm_record_panelz implements no hook" in text  # in the extras module boot would not load here
    assert "crm_record_panels takes ['user']" in text
    assert "crm_dashboard_widgets" not in text


async def test_actors_and_events_not_named_after_the_addon_fail() -> None:
    text = await _fails(_Broken().test_actors_events_and_schedules_carry_the_addon_name)
    assert "actor 'crm_testbroken_steal.now'" in text
    assert "schedule names actor 'crm_testbroken.missing'" in text
    assert "event 'note_archived' is not named crm_testbroken_<event>" in text
    assert "event 'crm_testbroken_item_made' has no docstring" in text


async def test_missing_empty_or_fuzzy_translations_fail() -> None:
    text = await _fails(_Broken().test_translations_are_complete)
    assert "'Nothing to see' has no zh_CN translation" in text  # in a template, not in the catalog
    assert "'Clerk' is fuzzy" in text and "'Gone' is not translated" in text
    assert "'Items' has no" not in text


async def test_a_page_served_without_a_login_fails(crm_boot: Any) -> None:
    text = await _fails(_Broken().test_routes_need_a_login, crm_boot)
    assert "GET /broken/ (item_list) answers 200" in text
    assert "POST /broken/ (item_create) answers 303" in text
    assert "item_detail" not in text and "public_open" not in text


async def test_an_install_that_loses_the_kept_data_fails(crm_db_url: str, crm_boot: Any) -> None:
    text = await _fails(_Broken().test_installs_upgrades_uninstalls_and_purges, crm_db_url, crm_boot)
    assert "the reinstall did not find the data it left" in text


async def test_a_purge_that_leaves_rows_behind_fails(crm_db_url: str, crm_boot: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from core import data, lifecycle

    async def keep(addon: str) -> int:
        return 0

    async def keep_jobs(name: str) -> None:
        return None

    monkeypatch.setattr(data, "forget", keep)
    monkeypatch.setattr(lifecycle, "_forget_jobs", keep_jobs)
    text = await _fails(TestFixtureContract().test_installs_upgrades_uninstalls_and_purges, crm_db_url, crm_boot)
    assert "left behind by the purge" in text
    assert "1 core_external_id rows" in text and "1 outbox rows" in text and "1 schedule ticks" in text


async def test_leftovers_name_tables_rows_and_role_assignments(crm_db_url: str) -> None:
    from core import contract, lifecycle
    from core.security.models import User, UserRole

    found = _Fixtures()._found()
    base = found.addons["crm_testbase"]
    await lifecycle.install(["crm_testbase"], found)
    user = await User.insert(User(login="kept", name="Kept")).returning(User.id)
    await UserRole.insert(UserRole(user=user[0]["id"], role="tb_manager"))
    await lifecycle.uninstall("crm_testbase", found)  # data kept: everything is still there
    left = await contract.leftovers(base, found)
    assert "table crm_testbase_note" in left and "its core_addon row" in left
    assert "1 core_external_id rows" in left and "1 user role assignments" in left
    await lifecycle.install(["crm_testbase"], found)
    await lifecycle.uninstall("crm_testbase", found, purge=True)
    assert await contract.leftovers(base, found) == []
    assert not await UserRole.exists().where(UserRole.role == "tb_manager")
