"""Discovery through real entry points, with fake distributions written to a temporary sys.path entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.discovery import discover


def _dist(root: Path, dist: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[crm.addons]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def fake_dists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ok = "from core.addon import Addon\nADDON = Addon(name='crm_fake_ok', version='1.0')\n"
    _dist(tmp_path, "crm-fake-ok", {"crm_fake_ok": "crm_fake_ok:ADDON"}, {"crm_fake_ok": ok})
    _dist(tmp_path, "crm-fake-broken", {"crm_fake_broken": "crm_fake_broken:ADDON"},
          {"crm_fake_broken": "import not_a_module_anywhere\n"})
    _dist(tmp_path, "crm-fake-notaddon", {"crm_fake_notaddon": "crm_fake_notaddon:ADDON"},
          {"crm_fake_notaddon": "ADDON = {'name': 'crm_fake_notaddon'}\n"})
    _dist(tmp_path, "crm-fake-invalid", {"crm_fake_invalid": "crm_fake_invalid:ADDON"},
          {"crm_fake_invalid": "from core.addon import Addon\nADDON = Addon(name='crm_fake_invalid', version='x')\n"})
    dup = "from core.addon import Addon\nADDON = Addon(name='crm_fake_dup', version='1.0')\n"
    _dist(tmp_path, "crm-fake-dup-a", {"crm_fake_dup": "crm_fake_dup_a:ADDON"}, {"crm_fake_dup_a": dup})
    _dist(tmp_path, "crm-fake-dup-b", {"crm_fake_dup": "crm_fake_dup_b:ADDON"}, {"crm_fake_dup_b": dup})
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_broken_addons_are_reported_by_name_and_the_others_still_load(fake_dists: Path) -> None:
    found = discover()
    assert "crm_fake_ok" in found.addons
    assert found.distributions["crm_fake_ok"] == "crm-fake-ok"
    assert "No module named 'not_a_module_anywhere'" in found.errors["crm_fake_broken"]
    assert "must name an Addon" in found.errors["crm_fake_notaddon"]
    assert "not a version number" in found.errors["crm_fake_invalid"]
    assert found.errors["crm_fake_dup"] == "declared by two distributions"
    for name in ("crm_fake_broken", "crm_fake_notaddon", "crm_fake_invalid", "crm_fake_dup"):
        assert name not in found.addons


def test_require_names_the_problem(fake_dists: Path) -> None:
    from core.errors import AddonError

    found = discover()
    with pytest.raises(AddonError, match="'crm_fake_broken': failed to load: ModuleNotFoundError"):
        found.require("crm_fake_broken")
    with pytest.raises(AddonError, match="'crm_nope': unknown addon"):
        found.require("crm_nope")
    assert found.require("crm_fake_ok").version == "1.0"
