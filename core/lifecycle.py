"""Install, upgrade and uninstall addons in one database, one transaction per addon.

A failure at any step (import, migration, data, ``on_install``) rolls that addon's transaction back, so the
database is never left half-installed; the message names the addon and the step.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version
from piccolo.table import Table

from core import data, db, loader, migrate
from core.addon import Addon
from core.discovery import Discovered
from core.errors import AddonError
from core.migrations_registry import app_config, tables_of
from core.models import InstalledAddon


@dataclass
class Plan:
    """What an uninstall would do (``--dry-run`` prints it)."""

    addon: str
    tables: list[str] = field(default_factory=list)
    purge: bool = False


async def _call(path: str | None, addon: str, field: str) -> None:
    if path is None:
        return
    fn: Callable[[], Any] = loader.load(path, addon, field)
    result = fn()
    if inspect.isawaitable(result):
        await result


async def ensure_kernel() -> list[str]:
    """Create or migrate the kernel's own tables (``crm init``)."""
    async with db.atomic():
        return await migrate.forwards(app_config(None))


async def installed() -> dict[str, str]:
    """Installed addon name → installed version."""
    rows = await InstalledAddon.select(InstalledAddon.name, InstalledAddon.version).where(
        InstalledAddon.state == "installed")
    return {r["name"]: r["version"] for r in rows}


def _tables_by_name(addons: list[Addon]) -> dict[str, type[Table]]:
    out: dict[str, type[Table]] = {}
    for addon in addons:
        for table in tables_of(addon.models, addon.name):
            out[table._meta.tablename] = table
    return out


async def _load_files(addon: Addon, files: tuple[str, ...], found: Discovered) -> int:
    chain = [found.addons[n] for n in _chain(addon, found)]
    tables = _tables_by_name(chain)
    return sum([await data.load_file(addon.name, f, tables) for f in files])


def _chain(addon: Addon, found: Discovered) -> list[str]:
    from core.resolver import closure

    return closure([addon.name], found.addons, found.errors)


async def install(names: list[str], found: Discovered, *, demo: bool = False) -> list[str]:
    """Install ``names`` and their missing dependencies; return the ones newly installed."""
    from core.resolver import closure

    order = closure(names, found.addons, found.errors)
    await ensure_kernel()
    done = await installed()
    new: list[str] = []
    for name in order:
        if name in done:
            continue
        addon = found.addons[name]
        try:
            async with db.atomic():
                await migrate.forwards(app_config(addon))
                await _load_files(addon, addon.data, found)
                if demo:
                    await _load_files(addon, addon.demo, found)
                await _call(addon.on_install, name, "on_install")
                await _mark(addon, "installed")
        except AddonError:
            raise
        except Exception as exc:
            raise AddonError(name, f"install failed: {type(exc).__name__}: {exc}") from exc
        new.append(name)
    return new


async def load_demo(names: list[str], found: Discovered) -> int:
    count = 0
    for name in names:
        addon = found.addons[name]
        async with db.atomic():
            count += await _load_files(addon, addon.demo, found)
    return count


async def _mark(addon: Addon, state: str) -> None:
    now = dt.datetime.now(dt.UTC)
    exists = await InstalledAddon.exists().where(InstalledAddon.name == addon.name)
    if exists:
        await InstalledAddon.update({InstalledAddon.version: addon.version, InstalledAddon.state: state,
                                     InstalledAddon.updated_at: now}).where(
            InstalledAddon.name == addon.name)
    else:
        await InstalledAddon.insert(InstalledAddon(name=addon.name, version=addon.version, state=state))


async def upgrade(names: list[str] | None, found: Discovered) -> list[str]:
    """Run pending migrations, reload data and ``on_upgrade`` for installed addons, dependencies first."""
    from core.resolver import closure

    await ensure_kernel()
    current = await installed()
    targets = names or list(current)
    for name in targets:
        if name not in current:
            raise AddonError(name, "is not installed")
    order = [n for n in closure(targets, found.addons, found.errors) if n in current]
    changed: list[str] = []
    for name in order:
        addon = found.addons[name]
        if Version(addon.version) < Version(current[name]):
            raise AddonError(name, f"installed version {current[name]} is newer than present "
                                   f"{addon.version}; downgrades are not supported")
        try:
            async with db.atomic():
                ran = await migrate.forwards(app_config(addon))
                await _load_files(addon, addon.data, found)
                if ran or addon.version != current[name]:
                    await _call(addon.on_upgrade, name, "on_upgrade")
                    changed.append(name)
                await _mark(addon, "installed")
        except AddonError:
            raise
        except Exception as exc:
            raise AddonError(name, f"upgrade failed: {type(exc).__name__}: {exc}") from exc
    return changed


async def uninstall(name: str, found: Discovered, *, purge: bool = False,
                    dry_run: bool = False) -> Plan:
    """Uninstall ``name``; refuse while an installed addon depends on it. Data stays unless ``purge``."""
    from core.resolver import dependents

    current = await installed()
    if name not in current:
        raise AddonError(name, "is not installed")
    addon = found.require(name)
    blockers = [d for d in dependents(name, found.addons) if d in current]
    if blockers:
        raise AddonError(name, f"still needed by installed addon(s): {', '.join(blockers)}")
    config = app_config(addon)
    plan = Plan(addon=name, purge=purge,
                tables=[t._meta.tablename for t in reversed(config.table_classes)] if purge else [])
    if dry_run:
        return plan
    async with db.atomic():
        await _call(addon.on_uninstall, name, "on_uninstall")
        if purge:
            await migrate.drop(config)
            await data.forget(name)
            await InstalledAddon.delete().where(InstalledAddon.name == name)
        else:
            await _mark(addon, "uninstalled")
    return plan
