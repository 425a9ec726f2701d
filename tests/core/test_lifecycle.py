from __future__ import annotations

import pytest

from core import lifecycle
from core.addon import Addon
from core.discovery import Discovered
from core.errors import AddonError
from core.models import ExternalId, InstalledAddon


async def test_install_pulls_dependencies_runs_migrations_and_loads_data(crm_db_url: str, found: Discovered) -> None:
    from crm_testbase.models import Note

    new = await lifecycle.install(["crm_testext"], found)
    assert new == ["crm_testbase", "crm_testext"]
    assert await lifecycle.installed() == {"crm_testbase": "1.0.0", "crm_testext": "1.0.0"}
    rows = await Note.select(Note.title, Note.phone)
    assert rows == [{"title": "Welcome note", "phone": "13812345678"}]
    xid = await ExternalId.select().where(ExternalId.key == "welcome").first()
    assert xid["addon"] == "crm_testbase" and xid["table_name"] == "crm_testbase_note"


async def test_upgrade_is_idempotent_and_updates_data_in_place(crm_db_url: str, found: Discovered) -> None:
    from crm_testbase.models import Note

    await lifecycle.install(["crm_testbase"], found)
    await Note.update({Note.title: "edited"}).where(Note.title == "Welcome note")
    assert await lifecycle.upgrade(None, found) == []
    assert await lifecycle.upgrade(["crm_testbase"], found) == []
    assert await Note.count() == 1  # no duplicate row
    assert (await Note.select(Note.title).first())["title"] == "Welcome note"


async def test_uninstall_refuses_while_a_dependent_is_installed(crm_db_url: str, found: Discovered) -> None:
    await lifecycle.install(["crm_testext"], found)
    with pytest.raises(AddonError, match="still needed by installed addon.*crm_testext"):
        await lifecycle.uninstall("crm_testbase", found)


async def test_uninstall_keeps_data_unless_purged(crm_db_url: str, found: Discovered) -> None:
    from crm_testbase.models import Note

    await lifecycle.install(["crm_testbase"], found)
    plan = await lifecycle.uninstall("crm_testbase", found, purge=True, dry_run=True)
    assert plan.tables == ["crm_testbase_note"]
    assert "crm_testbase" in await lifecycle.installed()  # dry run changed nothing
    await lifecycle.uninstall("crm_testbase", found)
    assert "crm_testbase" not in await lifecycle.installed()
    assert await Note.count() == 1  # data kept
    await lifecycle.install(["crm_testbase"], found)  # reinstall reuses tables and external ids
    assert await Note.count() == 1
    await lifecycle.uninstall("crm_testbase", found, purge=True)
    assert not await InstalledAddon.exists().where(InstalledAddon.name == "crm_testbase")
    assert not await ExternalId.exists().where(ExternalId.addon == "crm_testbase")
    with pytest.raises(Exception):  # noqa: B017 - the table is gone, the driver's error type varies
        await Note.count()


def _broken(found: Discovered, **changes: object) -> Discovered:
    from dataclasses import replace

    base = replace(found.addons["crm_testbase"], **changes)
    return Discovered(addons={"crm_testbase": base})


async def test_failed_on_install_leaves_the_database_as_it_was(crm_db_url: str, found: Discovered) -> None:
    from crm_testbase.models import Note

    bad = _broken(found, on_install="crm_testbase.nowhere:install")
    with pytest.raises(AddonError,
                       match="crm_testbase.*on_install = 'crm_testbase.nowhere:install' cannot be imported"):
        await lifecycle.install(["crm_testbase"], bad)
    assert await lifecycle.installed() == {}
    assert not await ExternalId.exists()
    with pytest.raises(Exception):  # noqa: B017 - the migration was rolled back: no table
        await Note.count()


async def test_failed_data_file_rolls_back(crm_db_url: str, found: Discovered) -> None:
    bad = _broken(found, data=("data/crm_testbase_note.csv", "data/missing.csv"))
    with pytest.raises(AddonError, match="data file 'data/missing.csv' not found"):
        await lifecycle.install(["crm_testbase"], bad)
    assert await lifecycle.installed() == {}


async def test_migration_failing_midway_rolls_back(crm_db_url: str, found: Discovered, tmp_path, monkeypatch) -> None:
    """A second migration that breaks after the first one ran: nothing of either remains."""
    import shutil
    import sys

    pkg = tmp_path / "crm_brokenmig"
    (pkg / "migrations").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "migrations" / "__init__.py").write_text("")
    src = next((__import__("crm_testbase").__path__[0] + "/migrations/" + f) for f in
               __import__("os").listdir(__import__("crm_testbase").__path__[0] + "/migrations") if f.endswith("000.py"))
    shutil.copy(src, pkg / "migrations" / "m1_2026_11_23t09_00_00_000000.py")
    (pkg / "migrations" / "m2_2026_11_23t09_00_01_000000.py").write_text(
        "from piccolo.apps.migrations.auto.migration_manager import MigrationManager\n"
        "ID = '2026-11-23T09:00:01:000000'\nVERSION = '1'\nDESCRIPTION = 'boom'\n"
        "async def boom():\n    raise RuntimeError('disk on fire')\n"
        "async def forwards():\n    m = MigrationManager(migration_id=ID, app_name='crm_testbase')\n"
        "    m.add_raw(boom)\n    return m\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("crm_brokenmig", None)
    bad = _broken(found, migrations="crm_brokenmig.migrations")
    with pytest.raises(AddonError, match="migration failed: .*disk on fire"):
        await lifecycle.install(["crm_testbase"], bad)
    assert await lifecycle.installed() == {}
    from crm_testbase.models import Note

    with pytest.raises(Exception):  # noqa: B017 - first migration rolled back too
        await Note.count()


async def test_downgrade_is_refused(crm_db_url: str, found: Discovered) -> None:
    from dataclasses import replace

    await lifecycle.install(["crm_testbase"], found)
    older = Discovered(addons={"crm_testbase": replace(found.addons["crm_testbase"], version="0.9.0")})
    with pytest.raises(AddonError, match="installed version 1.0.0 is newer than present 0.9.0"):
        await lifecycle.upgrade(None, older)


async def test_unknown_and_not_installed_names(crm_db_url: str, found: Discovered) -> None:
    with pytest.raises(AddonError, match="'nope': unknown addon"):
        await lifecycle.install(["nope"], found)
    with pytest.raises(AddonError, match="is not installed"):
        await lifecycle.uninstall("crm_testbase", found)
    with pytest.raises(AddonError, match="is not installed"):
        await lifecycle.upgrade(["crm_testbase"], found)


def test_addon_without_tables_installs(crm_db_url: str) -> None:
    import asyncio

    plain = Addon(name="crm_plain", version="2.0")
    found = Discovered(addons={"crm_plain": plain})
    assert asyncio.run(lifecycle.install(["crm_plain"], found)) == ["crm_plain"]
