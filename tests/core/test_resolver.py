from __future__ import annotations

import pytest

from core.addon import Addon
from core.errors import AddonError
from core.resolver import closure, dependents


def _addons(**deps: tuple[str, ...]) -> dict[str, Addon]:
    return {name: Addon(name=name, version="1.0", depends=d) for name, d in deps.items()}


def test_dependencies_come_first() -> None:
    present = _addons(a=(), b=("a",), c=("b", "a"), d=())
    assert closure(["c"], present) == ["a", "b", "c"]
    assert closure(["d", "c"], present) == ["d", "a", "b", "c"]


def test_missing_dependency_names_both() -> None:
    with pytest.raises(AddonError, match="'b'.*depends on 'zz', which is not present"):
        closure(["b"], _addons(b=("zz",)))


def test_unknown_addon() -> None:
    with pytest.raises(AddonError, match="'nope': unknown addon"):
        closure(["nope"], _addons(a=()))


def test_cycle_is_reported_with_its_path() -> None:
    with pytest.raises(AddonError, match="cycle: a -> b -> c -> a"):
        closure(["a"], _addons(a=("b",), b=("c",), c=("a",)))


def test_broken_addon_is_named() -> None:
    with pytest.raises(AddonError, match="'x': failed to load: ImportError: boom"):
        closure(["y"], _addons(y=("x",)), broken={"x": "ImportError: boom"})


def test_dependents_transitive() -> None:
    present = _addons(a=(), b=("a",), c=("b",), d=())
    assert dependents("a", present) == ["b", "c"]
    assert dependents("d", present) == []


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "Bad-Name", "version": "1.0"}, "lowercase"),
    ({"name": "ok", "version": "one"}, "not a version"),
    ({"name": "ok", "version": "1.0", "depends": ("ok",)}, "itself"),
    ({"name": "ok", "version": "1.0", "routes": "ok.views:ROUTES"}, "routes and mount go together"),
    ({"name": "ok", "version": "1.0", "routes": "ok.v:R", "mount": "ok"}, "must start with '/'"),
    ({"name": "ok", "version": "1.0", "models": "not a path"}, "not a dotted path"),
])
def test_invalid_manifest_is_refused_naming_the_problem(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(AddonError, match=message):
        Addon(**kwargs)  # type: ignore[arg-type]
