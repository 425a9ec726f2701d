"""Install-time work of crm_contacts (``on_install``)."""

from __future__ import annotations


async def install() -> None:
    """When the demo people were just loaded (this install with demo data, the first time), scan them for
    duplicates at once, so the review page has groups before the daily scan first runs. Any other install
    (none, or a reinstall finding the groups it left) changes nothing."""
    from core.models import ExternalId
    from crm_contacts.duplicates import scan_people
    from crm_contacts.models import DuplicateGroup

    demo = await ExternalId.exists().where((ExternalId.addon == "crm_contacts") & (ExternalId.key == "demo_person_0"))
    if demo and not await DuplicateGroup.count():
        await scan_people()
