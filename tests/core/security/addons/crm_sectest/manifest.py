"""Test-only addon for the security tests: like a third-party addon, it reads crm_testbase's notes through the
kernel's access layer only, adding an export (CSV), a PDF, an HTML edit form, a count and a reveal endpoint,
plus a role whose grant uses the "subordinates" scope."""

from core.addon import Addon, FieldRule, Grant, Role

NOTE = "crm_testbase.note"

ADDON = Addon(
    name="crm_sectest", version="1.0.0", depends=("crm_testbase",), summary="Test-only: security surfaces",
    routes="crm_sectest.views:ROUTES", mount="/sectest", templates="crm_sectest:templates",
    roles=(Role("st_lead", "Team lead (subordinates)"),),
    permissions=(
        Grant("st_lead", NOTE, ("read", "export"), scope="subordinates"),
        Grant("tb_user", NOTE, ("export",), scope="own"),
    ),
    field_rules=(
        FieldRule("st_lead", NOTE, "phone", "masked", masker="phone"),
        FieldRule("st_lead", NOTE, "internal", "hidden"),
    ),
)
