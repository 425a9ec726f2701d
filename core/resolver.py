"""Dependency order: which addons an install needs, and in which order, with errors that name names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from core.addon import Addon
from core.errors import AddonError


def closure(targets: Iterable[str], present: Mapping[str, Addon],
            broken: Mapping[str, str] | None = None) -> list[str]:
    """``targets`` and everything they depend on, dependencies first (a topological order).

    Raises AddonError for an unknown or broken addon, a missing dependency, or a cycle.
    """
    broken = broken or {}
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            cycle = " -> ".join((*path[path.index(name):], name))
            raise AddonError(name, f"dependency cycle: {cycle}")
        if name in broken:
            raise AddonError(name, f"failed to load: {broken[name]}")
        if name not in present:
            if path:
                raise AddonError(path[-1], f"depends on {name!r}, which is not present")
            raise AddonError(name, "unknown addon")
        state[name] = "active"
        for dep in present[name].depends:
            visit(dep, (*path, name))
        state[name] = "done"
        order.append(name)

    for target in targets:
        visit(target, ())
    return order


def dependents(name: str, among: Mapping[str, Addon]) -> list[str]:
    """Addons in ``among`` that depend on ``name``, directly or not."""
    out: list[str] = []
    frontier = [name]
    while frontier:
        current = frontier.pop()
        for other in among.values():
            if current in other.depends and other.name not in out:
                out.append(other.name)
                frontier.append(other.name)
    return sorted(out)
