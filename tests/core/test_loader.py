"""One loader for manifest dotted paths: every failure is one line naming the addon, the field and the cause."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from core import loader
from core.discovery import Discovered
from core.errors import AddonError


@pytest.fixture
def modules(tmp_path: Path):
    (tmp_path / "crm_broken_inner.py").write_text("import crm_no_such_dependency\n")
    (tmp_path / "crm_broken_syntax.py").write_text("def oops(:\n")
    (tmp_path / "crm_broken_raises.py").write_text("raise RuntimeError('settings missing')\n")
    (tmp_path / "crm_fine.py").write_text("ROUTES = ['r']\ndef install():\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    yield
    sys.path.remove(str(tmp_path))
    for name in ("crm_broken_inner", "crm_broken_syntax", "crm_broken_raises", "crm_fine"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize(("path", "cause"), [
    ("crm_nowhere.models", "ModuleNotFoundError: No module named 'crm_nowhere'"),
    ("crm_broken_inner", "ModuleNotFoundError: No module named 'crm_no_such_dependency'"),
    ("crm_broken_syntax", "SyntaxError in "),
    ("crm_broken_raises", "RuntimeError: settings missing"),
    ("crm_fine:nothing", "module 'crm_fine' has no attribute 'nothing'"),
])
def test_every_failure_is_one_line_naming_addon_field_and_cause(modules, path: str, cause: str) -> None:
    with pytest.raises(AddonError) as failed:
        loader.load(path, "crm_x", "on_install")
    message = str(failed.value)
    assert "\n" not in message and message.startswith("addon 'crm_x': manifest field on_install")
    assert cause in message, message


def test_loads_attributes_with_a_default(modules) -> None:
    assert loader.load("crm_fine", "crm_x", "routes", default_attr="ROUTES") == ["r"]
    assert loader.load("crm_fine:install", "crm_x", "on_install")() == 1
    assert loader.load_module("crm_fine", "crm_x", "models").__name__ == "crm_fine"


@pytest.mark.parametrize("field", ["models", "actors", "hooks", "hookspecs"])
async def test_boot_reports_a_broken_part_in_one_line(crm_boot, found: Discovered, field: str) -> None:
    await crm_boot("crm_testbase", found=found)  # installed with its real parts
    value: object = ("crm_testbase.missing",) if field == "hooks" else "crm_testbase.missing"
    broken = dataclasses.replace(found.addons["crm_testbase"], **{field: value})
    with pytest.raises(AddonError, match=f"addon 'crm_testbase': manifest field {field} = 'crm_testbase.missing' "
                                         "cannot be imported: ModuleNotFoundError"):
        await crm_boot(found=Discovered(addons={"crm_testbase": broken}))
