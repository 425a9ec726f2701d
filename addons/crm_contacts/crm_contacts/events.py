"""The "updated" events of crm_contacts: every write path of people and organizations (form, API, import, merge,
tags, bulk changes, import revert) reports here what it changed, and each record's changes of one transaction go
out as one event at its end.

``crm_contacts_person_updated(person_id, fields)`` / ``crm_contacts_organization_updated(organization_id,
fields)`` (``fields``: the sorted names of what changed; ``"tags"`` for tags) are published just before the
transaction commits (``core.db.before_commit``): the writes are done, so a listener reading the record sees it
changed, and the jobs it enqueues (outbox rows) commit with them and run after the commit. A rolled-back write
publishes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from core import db, hooks

_STATE = "crm_contacts.updated"
_EVENTS = {"person": ("crm_contacts_person_updated", "person_id"),
           "organization": ("crm_contacts_organization_updated", "organization_id")}
_NOT_NEWS = frozenset({"version", "updated_at", "search_text"})  # bookkeeping columns every write touches


def kind_of(model: str) -> str:
    """``"person"`` or ``"organization"`` for ``PERSON_MODEL`` / ``ORGANIZATION_MODEL``."""
    from crm_contacts.api import PERSON_MODEL

    return "person" if model == PERSON_MODEL else "organization"


async def updated(kind: str, record_ids: Iterable[int], fields: Iterable[str]) -> None:
    """Note that ``fields`` of the people (``kind="person"``) or organizations ``record_ids`` changed in the
    current transaction (outside one, the event goes out now)."""
    names = {str(f) for f in fields} - _NOT_NEWS
    ids = [int(i) for i in record_ids]
    if not names or not ids:
        return
    if not db.in_atomic():
        async with db.atomic():
            await updated(kind, ids, names)
        return
    state = db.transaction_state()
    assert state is not None  # inside atomic()
    pending: dict[tuple[str, int], set[str]] | None = state.get(_STATE)
    if pending is None:
        pending = state[_STATE] = {}
        db.before_commit(lambda: _flush(pending or {}))
    for record_id in ids:
        pending.setdefault((kind, record_id), set()).update(names)


async def _flush(pending: dict[tuple[str, int], set[str]]) -> None:
    while pending:  # a listener's own write may note another change: it goes out too
        (kind, record_id), names = pending.popitem()
        event, key = _EVENTS[kind]
        await hooks.publish(event, **{key: record_id, "fields": sorted(names)})
