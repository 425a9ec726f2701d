"""One Piccolo app per addon (plus ``core``), built from the Addon declarations.

Piccolo resolves apps and their ``migration_dependencies`` by importing ``<path>.APP_CONFIG``; we register
small synthetic modules ``core.piccolo_apps.<name>`` so addons need no ``piccolo_app.py`` boilerplate.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from types import ModuleType

from piccolo.conf.apps import AppConfig, AppRegistry
from piccolo.table import Table

from core.addon import Addon
from core.errors import AddonError
from core.loader import load_module

KERNEL = "core"
PREFIX = "core.piccolo_apps"


def tables_of(module_path: str | None, addon: str = "core") -> list[type[Table]]:
    """Every Table class defined (not merely imported) in ``module_path``, in source order."""
    if not module_path:
        return []
    module = load_module(module_path, addon, "models")
    found = [obj for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, Table) and obj is not Table
             and obj.__module__ == module.__name__]
    return found


def _folder(package: str, addon: str = "core") -> Path:
    module = load_module(package, addon, "migrations")
    paths = list(getattr(module, "__path__", []))
    if not paths:
        raise AddonError(package.split(".")[0], f"migrations {package!r} is not a package")
    return Path(paths[0])


def kernel_tables() -> list[type[Table]]:
    return (tables_of("core.models") + tables_of("core.security.models") + tables_of("core.automation.models")
            + tables_of("core.approvals.models") + tables_of("core.webhooks.models")
            + tables_of("core.timeline.models"))


def app_config(addon: Addon | None) -> AppConfig:
    """The Piccolo app of ``addon`` (``None`` means the kernel)."""
    if addon is None:
        config = AppConfig(app_name=KERNEL, migrations_folder_path=str(_folder("core.migrations")),
                           table_classes=kernel_tables())
    else:
        deps = [f"{PREFIX}.{KERNEL}"] + [f"{PREFIX}.{d}" for d in addon.depends]
        folder = str(_folder(addon.migrations, addon.name)) if addon.migrations else ""
        config = AppConfig(app_name=addon.name, migrations_folder_path=folder,
                           table_classes=tables_of(addon.models, addon.name), migration_dependencies=deps)
    _register(config)
    return config


def _register(config: AppConfig) -> None:
    name = f"{PREFIX}.{config.app_name}"
    module = ModuleType(name)
    module.APP_CONFIG = config  # type: ignore[attr-defined]
    sys.modules[name] = module


def app_registry() -> AppRegistry:
    """An AppRegistry of the kernel and every present addon (for Piccolo's CLI)."""
    from core.discovery import discover

    app_config(None)
    names = [f"{PREFIX}.{KERNEL}"]
    for addon in discover().addons.values():
        if addon.models:
            app_config(addon)
            names.append(f"{PREFIX}.{addon.name}")
    return AppRegistry(apps=names)
