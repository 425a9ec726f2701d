from core.testing import AddonContract


class TestContract(AddonContract):
    addon = "crm_contacts"
