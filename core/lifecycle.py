"""Install, upgrade and uninstall addons in one database, one transaction per addon.

A failure at any step (import, migration, data, ``on_install``) rolls that addon's transaction back, so the
database is never left half-installed; the message names the addon and the step.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version
from piccolo.table import Table

from core import data, db, loader, migrate
from core.addon import Addon
from core.discovery import Discovered
from core.errors import AddonError
from core.migrations_registry import app_config, kernel_tables, tables_of
from core.models import InstalledAddon, Outbox, ScheduleTick


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
    # an addon's data may seed kernel tables too (e.g. a demo automation rule over its own records)
    out: dict[str, type[Table]] = {t._meta.tablename: t for t in kernel_tables()}
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
            await migrate.drop(config, [n for n in found.addons if n != name])
            await data.forget(name)
            await _forget_jobs(name)
            await _forget_custom_fields(name)
            others = [found.addons[n] for n in current if n != name and n in found.addons]
            await _forget_roles(own_roles(addon, others))
            await InstalledAddon.delete().where(InstalledAddon.name == name)
        else:
            await _mark(addon, "uninstalled")
    return plan


def own_roles(addon: Addon, others: list[Addon]) -> set[str]:
    """The roles only ``addon`` declares: neither the kernel nor one of ``others`` declares them too."""
    from core.security.policy import KERNEL_ROLES

    shared = {r.name for r in KERNEL_ROLES} | {r.name for other in others for r in other.roles}
    return {r.name for r in addon.roles} - shared


async def _forget_jobs(name: str) -> None:
    """The outbox rows and schedule ticks of the addon's actors (``<addon>.<verb>``): no worker could run
    them any more, and a reinstall must not replay them."""
    prefix = f"{name}."
    jobs = await Outbox.select(Outbox.id, Outbox.actor).where(Outbox.actor.like(f"{name}.%"))
    ids = [r["id"] for r in jobs if r["actor"].startswith(prefix)]  # LIKE's "_" matches any character
    if ids:
        await Outbox.delete().where(Outbox.id.is_in(ids))
    ticks = await ScheduleTick.select(ScheduleTick.id, ScheduleTick.key).where(ScheduleTick.key.like(f"{name}.%"))
    ids = [r["id"] for r in ticks if r["key"].startswith(prefix)]
    if ids:
        await ScheduleTick.delete().where(ScheduleTick.id.is_in(ids))


async def _forget_custom_fields(name: str) -> None:
    """Custom field definitions and form layouts of the addon's models (their values went with its tables)."""
    from core.models import CustomField, FormLayout

    for table in (CustomField, FormLayout):
        rows = await table.select(table._meta.primary_key, table.model).where(table.model.like(f"{name}.%"))
        ids = [r["id"] for r in rows if str(r["model"]).startswith(f"{name}.")]  # LIKE's "_" matches any character
        if ids:
            await table.delete().where(table._meta.primary_key.is_in(ids))


async def _forget_roles(roles: set[str]) -> None:
    """Users' assignments of roles no installed addon declares any more, and custom roles' mentions of them.

    API tokens keep theirs: a token's roles narrow its user's, and dropping the last one would widen it."""
    from core.security.models import CustomRole, UserRole

    if not roles:
        return
    await UserRole.delete().where(UserRole.role.is_in(sorted(roles)))
    for row in await CustomRole.select(CustomRole.id, CustomRole.implies):
        implies = json.loads(row["implies"]) if isinstance(row["implies"], str) else row["implies"]
        kept = [r for r in implies if r not in roles]
        if kept != implies:
            await CustomRole.update({CustomRole.implies: kept}).where(CustomRole.id == row["id"])
