"""Boot: from settings and the installed addons of one database to a running set of parts.

Order matters: the database engine and the job broker are configured first, then each installed addon's
heavy parts (tables, actors, hooks) are imported in dependency order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pluggy

from core import db, hooks, i18n, jobs, lifecycle, loader
from core.addon import Addon, Every
from core.discovery import Discovered, discover
from core.errors import AddonError, ConfigError
from core.migrations_registry import tables_of
from core.resolver import closure
from core.security import access
from core.security.policy import compile_policy
from core.settings import Settings

KERNEL_MODULES = ("core.security.actors", "core.automation.actors", "core.approvals.actors", "core.timeline.actors",
                  "core.notification_email",
                  "core.webhooks.actors")
#: the kernel's own implementations of its hooks (registered first: called first, like a dependency)
KERNEL_HOOKS = ("core.approvals.hooks", "core.usage")
#: the kernel's own periodic jobs (time-based automation rules look every minute)
KERNEL_SCHEDULES: tuple[Every, ...] = (Every(minutes=1, actor="core.automation_tick"),)


@dataclass
class Runtime:
    settings: Settings
    found: Discovered
    addons: list[Addon]
    plugins: pluggy.PluginManager
    broker: dramatiq.Broker
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.addons]

    def addon(self, name: str) -> Addon:
        for addon in self.addons:
            if addon.name == name:
                return addon
        raise AddonError(name, "is not installed")

    @property
    def schedules(self) -> list[Every]:
        return [*KERNEL_SCHEDULES, *(s for a in self.addons for s in a.schedules)]


_current: Runtime | None = None


def current() -> Runtime:
    if _current is None:
        raise ConfigError("the CRM is not booted (call core.runtime.boot)")
    return _current


async def installed_addons(found: Discovered) -> list[Addon]:
    try:
        names = list(await lifecycle.installed())
    except Exception as exc:
        raise ConfigError(f"the database has no CRM schema yet ({type(exc).__name__}): run `crm init`") from exc
    missing = [n for n in names if n not in found.addons]
    if missing:
        raise AddonError(missing[0], "is installed in this database but its code is not present "
                                     "(pip install it, or uninstall it)")
    return [found.addons[n] for n in closure(names, found.addons, found.errors)]


async def boot(settings: Settings, *, found: Discovered | None = None) -> Runtime:
    """Configure the engine and broker, import installed addons' parts, and make the runtime current."""
    global _current
    found = found or discover()
    engine = db.configure(settings.database_url)
    await db.check(engine, settings.database_url)
    addons = await installed_addons(found)
    names = {a.name for a in addons}
    for module in KERNEL_MODULES:
        loader.load_module(module, "core", "kernel")
    pm = hooks.manager()
    for module_path in KERNEL_HOOKS:
        hooks.add_impls(pm, module_path, "core")
    for addon in addons:
        tables_of(addon.models, addon.name)
        if addon.actors:
            loader.load_module(addon.actors, addon.name, "actors")
        if addon.hookspecs:
            hooks.add_specs(pm, addon.hookspecs, addon.name)
    for addon in addons:
        for module_path in addon.hooks:
            hooks.add_impls(pm, module_path, addon.name)
        for other, glue in addon.extras.items():
            if other in names:
                hooks.add_impls(pm, glue, addon.name, f"extras[{other!r}]")
    hooks.check(pm)
    db.bind(engine)  # tables imported above join the engine in use
    broker = jobs.configure(settings.broker_url, names | {"core"})
    i18n.load(["core", *names])
    access.set_policy(compile_policy(addons))
    _current = Runtime(settings=settings, found=found, addons=addons, plugins=pm, broker=broker)
    # collected once here (boot is async), so async implementations work like everywhere else
    _current.state["api_resources"] = await hooks.collect(pm, "crm_api_resources")
    return _current
