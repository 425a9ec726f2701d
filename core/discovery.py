"""Find the addons that are present: every distribution declaring the ``crm.addons`` entry point."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from stevedore import ExtensionManager

from core.addon import Addon
from core.errors import AddonError

GROUP = "crm.addons"


@dataclass
class Discovered:
    addons: dict[str, Addon] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    distributions: dict[str, str] = field(default_factory=dict)

    def require(self, name: str) -> Addon:
        if name in self.errors:
            raise AddonError(name, f"failed to load: {self.errors[name]}")
        if name not in self.addons:
            known = ", ".join(sorted(self.addons)) or "none"
            raise AddonError(name, f"unknown addon (present: {known})")
        return self.addons[name]


class _FreshExtensionManager(ExtensionManager[Any]):
    """stevedore, minus its entry-point cache: that cache is memoised per ``sys.path`` for the life of the
    process and went stale in tests after a ``pip install``; reading the metadata directly costs ~ms."""

    def list_entry_points(self) -> list[Any]:
        return list(entry_points(group=self.namespace))


def discover(group: str = GROUP) -> Discovered:
    """Load every manifest; a broken one is recorded by name, never skipped silently."""
    found = Discovered()

    def failed(_manager: Any, entry_point: Any, exc: BaseException) -> None:
        found.errors[entry_point.name] = f"{type(exc).__name__}: {exc}"

    manager: ExtensionManager[Any] = _FreshExtensionManager(group, on_load_failure_callback=failed)
    for ext in manager:
        addon = ext.plugin
        if not isinstance(addon, Addon):
            found.errors[ext.name] = f"entry point must name an Addon, got {type(addon).__name__}"
            continue
        if addon.name != ext.name:
            found.errors[ext.name] = f"entry point name differs from Addon.name {addon.name!r}"
            continue
        if addon.name in found.addons:
            found.errors[addon.name] = "declared by two distributions"
            del found.addons[addon.name]
            continue
        found.addons[addon.name] = addon
    for entry_point in entry_points(group=group):  # stevedore's cached entry points carry no dist
        if entry_point.name in found.addons and entry_point.dist is not None:
            found.distributions[entry_point.name] = entry_point.dist.name
    return found
