"""What people read instead of field names and keys: the label of each field of people and organizations, of the
import's modes, row outcomes and batch states. English here, translated where shown
(``{{ labels[f]|t }}``, ``gettext(label)``)."""

from __future__ import annotations

from core.i18n import N_

FIELD_LABELS = {
    "id": N_("Record number"),
    "name": N_("Name"),
    "given_name": N_("Given name"),
    "family_name": N_("Family name"),
    "organization": N_("Organization"),
    "company": N_("Company"),
    "job_title": N_("Job title"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "country": N_("Country"),
    "region": N_("Region"),
    "province": N_("Province"),
    "city": N_("City"),
    "language": N_("Language"),
    "stage": N_("Stage"),
    "source": N_("Source"),
    "industry": N_("Industry"),
    "birth_date": N_("Birth date"),
    "tax_id": N_("Tax id"),
    "website": N_("Website"),
    "owner": N_("Owner"),
    "team": N_("Team"),
    "tags": N_("Tags"),
    "note": N_("Note"),
    "version": N_("Version"),
    "duplicates": N_("Possible duplicates"),
    "custom": N_("Other fields"),
}
MODE_LABELS = {
    "create": N_("Create new people only"),
    "update": N_("Update existing people only"),
    "upsert": N_("Update existing people, create the others"),
}
#: import row outcomes and batch states
OUTCOME_LABELS = {
    "created": N_("Created"), "updated": N_("Updated"), "skipped": N_("Skipped"), "failed": N_("Failed"),
    "uploaded": N_("Uploaded"), "queued": N_("Queued"), "running": N_("Running"), "done": N_("Done"),
    "reverted": N_("Reverted"),
}
LANGUAGE_LABELS = {"zh_CN": "简体中文", "zh": "中文", "en": "English"}

