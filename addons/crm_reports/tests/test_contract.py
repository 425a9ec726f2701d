from __future__ import annotations

from core.testing import AddonContract


class TestContract(AddonContract):
    addon = "crm_reports"
