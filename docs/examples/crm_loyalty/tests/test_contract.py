"""What every addon must satisfy: discoverable, installs/upgrades/uninstalls, boots, templates compile."""

from __future__ import annotations

from core.testing import AddonContract


class TestContract(AddonContract):
    addon = "crm_loyalty"
