"""The public surface of crm_marketing: the only module other addons import (list ``crm_marketing`` in depends).

These functions act as the system, not as a user: call them after your own access checks.
"""

from __future__ import annotations

__all__ = ["CAMPAIGN_MODEL", "SEGMENT_MODEL", "is_suppressed", "segment_member_ids"]

CAMPAIGN_MODEL = "crm_marketing.campaign"
SEGMENT_MODEL = "crm_marketing.segment"


async def is_suppressed(email: str) -> bool:
    """Is ``email`` on the do-not-contact list (by hand, unsubscribed or bounced)?"""
    from crm_marketing.models import Suppression

    return bool(await Suppression.exists().where(Suppression.email == email.strip().lower()))


async def segment_member_ids(segment_id: int) -> list[int]:
    """The people of a segment as of its last build (ids of ``crm_contacts.person``)."""
    from crm_marketing.models import SegmentMember

    rows = await SegmentMember.select(SegmentMember.person).where(SegmentMember.segment == segment_id)
    return sorted(int(r["person"]) for r in rows)
