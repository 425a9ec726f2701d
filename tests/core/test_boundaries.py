"""Addon boundaries (DESIGN §3), read from source by core.boundaries: the kernel imports no addon; an addon
imports another only through its ``api`` module and only if its manifest depends on it; each addon's
distribution requires the kernel and the distributions of exactly the addons it depends on."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from core.addon import Addon
from core.boundaries import addon_import_violations, kernel_import_violations, package_folder, requirement_problems

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = sorted(p.parent for p in (ROOT / "addons").glob("*/pyproject.toml"))
EXAMPLE = ROOT / "docs" / "examples" / "crm_loyalty"
FIXTURES = ROOT / "tests" / "fixtures" / "addons"


def _manifest(folder: Path) -> Addon:
    """The ADDON of the manifest in ``folder`` (``<package>/manifest.py``), loaded without installing it."""
    spec = importlib.util.spec_from_file_location(f"_boundaries_{folder.name}", folder / "manifest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    addon = module.ADDON
    assert isinstance(addon, Addon)
    return addon


def _package(project: Path) -> Path:
    (manifest,) = project.glob("*/manifest.py")
    return manifest.parent


def _pyproject(project: Path) -> dict:
    return tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]


#: every addon this repository ships: folder of the package → manifest (bundled, the example, test fixtures)
PACKAGES: dict[Path, Addon] = {
    **{_package(p): _manifest(_package(p)) for p in BUNDLED},
    _package(EXAMPLE): _manifest(_package(EXAMPLE)),
    **{folder: _manifest(folder) for folder in sorted(FIXTURES.iterdir()) if (folder / "manifest.py").is_file()},
}
ADDONS = {addon.name: addon for addon in PACKAGES.values()}
DISTRIBUTIONS = {_manifest(_package(p)).name: _pyproject(p)["name"] for p in (*BUNDLED, EXAMPLE)}


def test_kernel_imports_no_addon() -> None:
    assert [str(v) for v in kernel_import_violations(ADDONS)] == []


@pytest.mark.parametrize("folder", list(PACKAGES), ids=lambda f: f.name)
def test_addon_imports_other_addons_only_through_their_api_and_only_if_it_depends_on_them(folder: Path) -> None:
    assert [str(v) for v in addon_import_violations(PACKAGES[folder].name, ADDONS, folder)] == []


@pytest.mark.parametrize("project", BUNDLED, ids=lambda p: p.name)
def test_addon_tests_import_only_addons_installed_with_it(project: Path) -> None:
    name = _package(project).name
    assert [str(v) for v in addon_import_violations(name, ADDONS, project / "tests", tests=True)] == []


@pytest.mark.parametrize("project", [*BUNDLED, EXAMPLE], ids=lambda p: p.name)
def test_distribution_requires_kernel_and_exactly_the_addons_the_manifest_depends_on(project: Path) -> None:
    name = _package(project).name
    assert requirement_problems(name, ADDONS, DISTRIBUTIONS, _pyproject(project).get("dependencies", [])) == []


def test_discovery_finds_the_bundled_addons_in_the_distributions_read_here() -> None:
    from core.discovery import discover

    found = discover()
    for project in BUNDLED:
        name = _package(project).name
        assert found.distributions.get(name) == DISTRIBUTIONS[name], found.errors.get(name)
        assert package_folder(name).name == name


# -- the check itself, on a made-up tree -------------------------------------------------------------------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_the_check_names_file_line_and_rule(tmp_path: Path) -> None:
    addons = {"crm_a": Addon(name="crm_a", version="1.0"),
              "crm_b": Addon(name="crm_b", version="1.0", depends=("crm_a",)),
              "crm_c": Addon(name="crm_c", version="1.0", depends=("crm_b",))}
    root = _tree(tmp_path, {
        "crm_c/__init__.py": "",
        "crm_c/ok.py": "from crm_b.api import X\nfrom crm_b import api\nimport crm_b.api\nfrom . import ok\n"
                       "from .sub import y\nimport crm_cx\nimport core.addon\n",
        "crm_c/bad.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from crm_b.models import Row\n\n"
                        "def f():\n    from crm_b import api, models\n    import crm_a.api\n"
                        "    import importlib\n    return importlib.import_module('crm_b.services')\n",
        "crm_c/testing/helpers.py": "from crm_b.models import Row\n",
        "tests/test_x.py": "from crm_b.models import Row\nfrom crm_a.services import s\nimport crm_d\n",
    })
    found = addon_import_violations("crm_c", addons, root / "crm_c")
    assert [(v.path.relative_to(root).as_posix(), v.line, v.imported) for v in found] == [
        ("crm_c/bad.py", 3, "crm_b.models"),
        ("crm_c/bad.py", 6, "crm_b.{api, models}"),
        ("crm_c/bad.py", 7, "crm_a.api"),
        ("crm_c/bad.py", 9, "crm_b.services"),
        ("crm_c/testing/helpers.py", 1, "crm_b.models"),
    ]
    assert str(found[0]) == f"{root / 'crm_c' / 'bad.py'}:3: imports crm_b.models: only crm_b.api may be imported " \
                            "from another addon"
    assert "a dependency of a dependency" in found[2].reason
    # tests: any module of the closure, nothing else
    in_tests = addon_import_violations("crm_c", {**addons, "crm_d": Addon(name="crm_d", version="1.0")},
                                       root / "tests", tests=True)
    assert [(v.line, v.imported) for v in in_tests] == [(3, "crm_d")]


def test_kernel_check_flags_any_addon_import(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"core/x.py": "import os\n\ndef f():\n    from crm_a import api\n",
                            "core/sub/y.py": "from crm_a.api import Z\nfrom core import addon\n"})
    found = kernel_import_violations(["crm_a"], root / "core")
    assert [(v.path.name, v.line) for v in found] == [("y.py", 1), ("x.py", 4)]
    assert all(v.reason == "the kernel imports no addon" for v in found)


def test_requirement_problems_both_ways() -> None:
    addons = {"crm_a": Addon(name="crm_a", version="1.0"),
              "crm_b": Addon(name="crm_b", version="1.0", depends=("crm_a",)),
              "crm_c": Addon(name="crm_c", version="1.0")}
    dists = {"crm_a": "crm-a", "crm_b": "crm-b", "crm_c": "Crm.C"}
    assert requirement_problems("crm_b", addons, dists, ["crm-kernel>=0.1", "crm_a>=1"]) == []
    assert requirement_problems("crm_b", addons, dists, ["httpx", "crm-c; extra == 'test'"]) == [
        "does not require crm-kernel", "depends on crm_a but does not require crm-a"]
    assert requirement_problems("crm_a", addons, dists, ["crm-kernel", "crm-c"]) == [
        "requires crm-c but does not list crm_c in depends"]
