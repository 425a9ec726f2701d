"""The public surface of crm_service: the only module other addons import (list ``crm_service`` in depends).

Only ids and plain values cross the boundary. These functions act as the system, not as a user: call them after
your own access checks.
"""

from __future__ import annotations

from typing import Any

TICKET_MODEL = "crm_service.ticket"
ARTICLE_MODEL = "crm_service.article"

__all__ = ["ARTICLE_MODEL", "TICKET_MODEL", "open_ticket", "ticket_reference"]


def ticket_reference(ticket_id: int) -> str:
    """The reference customers see in subjects and on the portal (``SR-000042``)."""
    from crm_service.tickets import reference

    return reference(ticket_id)


async def open_ticket(*, subject: str, description: str = "", person_id: int | None = None, channel: str = "api",
                      ticket_type: str = "question", priority: str = "normal") -> int:
    """Open a ticket as the system (routing, assignment and SLA apply); ``ValidationError`` naming the field."""
    from crm_service.tickets import create_ticket

    values: dict[str, Any] = {"subject": subject, "description": description, "channel": channel,
                              "ticket_type": ticket_type, "priority": priority}
    if person_id:
        values["person"] = person_id
    return await create_ticket(None, values)
