"""Events crm_contacts emits (listeners implement them with ``@hookimpl(optionalhook=True)``)."""

from __future__ import annotations

from core.hooks import hookspec


@hookspec
def crm_contacts_person_created(person_id: int) -> None:
    """A person was created (published inside the creating transaction)."""


@hookspec
def crm_contacts_records_merged(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    """Records of ``model`` were merged into ``survivor_id`` (after every addon re-pointed its references)."""


@hookspec
def crm_contacts_person_erased(person_id: int) -> None:
    """A person's personal data was erased (GDPR); listeners drop personal data they copied."""


@hookspec
def crm_contacts_person_updated(person_id: int, fields: list[str]) -> None:
    """A person's ``fields`` changed (form, API, import, import revert, merge, tags as ``"tags"``, bulk changes;
    archived: ``is_archived``). One event per person and transaction, published at its end, just before the
    commit (:mod:`crm_contacts.events`): listeners see the change and enqueue their jobs in that transaction."""


@hookspec
def crm_contacts_organization_updated(organization_id: int, fields: list[str]) -> None:
    """An organization's ``fields`` changed (as :func:`crm_contacts_person_updated`)."""
