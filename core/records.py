"""What installed addons do around one record: add panels, actions and timeline entries to its page (each
collected with the viewer's :class:`~core.security.access.Access`; include ``core/panels.html`` to show them),
and re-point their references when records are merged."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from core import hooks
from core.hooks import Panel, RecordAction, TimelineEntry
from core.security.access import Access


@dataclass(frozen=True)
class RecordExtras:
    panels: list[Panel]
    actions: list[RecordAction]
    timeline: list[TimelineEntry]


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


async def extras(access: Access, model: str, record_id: int, *, timeline: bool = False) -> RecordExtras:
    """Call this after checking that ``access`` may read the record: hooks trust that it may."""
    args = {"access": access, "model": model, "record_id": record_id}
    panels: list[Panel] = await hooks.call("crm_record_panels", **args)
    actions: list[RecordAction] = await hooks.call("crm_record_actions", **args)
    entries: list[TimelineEntry] = await hooks.call("crm_timeline_entries", **args) if timeline else []
    return RecordExtras(panels=sorted(panels, key=lambda p: p.order),
                        actions=sorted(actions, key=lambda a: a.order),
                        timeline=sorted(entries, key=lambda e: _aware(e.at), reverse=True))


async def repoint(model: str, survivor_id: int, loser_ids: list[int]) -> None:
    """Inside a merge's transaction: every addon moves its references from ``loser_ids`` to ``survivor_id``
    (``crm_merge_records``); one that raises aborts the merge."""
    await hooks.call("crm_merge_records", model=model, survivor_id=survivor_id, loser_ids=loser_ids)
