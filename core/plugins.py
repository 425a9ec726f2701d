"""The hook registry (pluggy): kernel specs, addons' event specs, and addons' implementations."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pluggy

from core import hookspecs
from core.errors import AddonError


def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("crm")
    pm.add_hookspecs(hookspecs)
    return pm


def add_specs(pm: pluggy.PluginManager, module_path: str, addon: str) -> None:
    try:
        pm.add_hookspecs(importlib.import_module(module_path))
    except ImportError as exc:
        raise AddonError(addon, f"cannot import hookspecs {module_path!r}: {exc}") from exc


def add_impls(pm: pluggy.PluginManager, module_path: str, addon: str) -> None:
    try:
        module = importlib.import_module(module_path)
    except ImportError as exc:
        raise AddonError(addon, f"cannot import hooks {module_path!r}: {exc}") from exc
    if pm.is_registered(module):
        return
    pm.register(module, name=module_path)


def check(pm: pluggy.PluginManager) -> None:
    """Reject implementations of hooks nobody declared (a typo would otherwise never run)."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise AddonError(getattr(exc, "plugin_name", "?").split(".")[0], str(exc)) from exc


async def collect(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[Any]:
    """Call ``hook`` on every implementation, await async ones, flatten lists, drop Nones.

    pluggy calls the most recently registered implementation first; we reverse to dependency order.
    """
    caller = getattr(pm.hook, hook, None)
    if caller is None:
        raise AddonError("core", f"unknown hook {hook!r}")
    out: list[Any] = []
    for result in reversed(caller(**kwargs)):
        if inspect.isawaitable(result):
            result = await result
        if result is None:
            continue
        if isinstance(result, (list, tuple)):
            out.extend(result)
        else:
            out.append(result)
    return out
