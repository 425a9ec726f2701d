"""Events crm_service emits (listeners implement them with ``@hookimpl(optionalhook=True)``)."""

from __future__ import annotations

from core.hooks import hookspec


@hookspec
def crm_service_ticket_created(ticket_id: int) -> None:
    """A ticket was opened, on any channel (published inside the creating transaction)."""


@hookspec
def crm_service_sla_breached(ticket_id: int, target: str) -> None:
    """A ticket's SLA ``target`` (``first_response``, ``next_response`` or ``resolution``) was breached (published
    once, inside the transaction that set the breach flag)."""
