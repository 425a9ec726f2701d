"""What a record's timeline shows one reader: the notes written on it, the changes the audit log holds (in
words, by :mod:`core.timeline.changes`) and what installed addons add (``crm_timeline_entries``: activities,
e-mails, quotes…), newest first; and whether the reader follows it.

A page includes it in two lines: ``record_timeline=await feed.build(access, model, id, url=request.url.path)`` in
the view (after checking the reader may read the record), ``{% include "core/timeline.html" %}`` in the template.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from core import hooks, i18n, labels
from core.hooks import TimelineEntry
from core.security.access import Access
from core.security.models import AuditLog, User
from core.timeline.changes import NOT_CHANGES, ChangeLine, Reader, has_changes, lines, remember_choices
from core.timeline.models import RecordFollower, RecordNote

#: the newest this many of each kind (notes, changes) are shown
LIMIT = 100
#: audit actions the timeline shows by other means (notes), or that change nothing of the record
_OWN = frozenset({"note", "follow", "unfollow"})


@dataclass(frozen=True)
class Item:
    """One dated line: a note (``author``, ``body``), a change (``changes``) or an addon's entry."""

    at: dt.datetime
    kind: str
    title: str
    body: str = ""
    url: str | None = None
    source: str = ""
    author: str = ""
    changes: list[ChangeLine] = field(default_factory=list)


@dataclass(frozen=True)
class RecordTimeline:
    model: str
    record_id: int
    url: str
    items: list[Item]
    following: bool
    followers: int


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


async def _names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {
        int(r["id"]): str(r["name"]) for r in await User.select(User.id, User.name).where(User.id.is_in(sorted(ids)))
    }


async def build(access: Access, model: str, record_id: int, *, url: str = "") -> RecordTimeline:
    """The timeline of record ``record_id`` of ``model`` for ``access``: call it after checking that ``access``
    may read the record (the hooks trust that it may)."""
    await remember_choices()
    entries: list[TimelineEntry] = await hooks.call(
        "crm_timeline_entries", access=access, model=model, record_id=record_id
    )
    items = [
        Item(at=_aware(e.at), kind=e.kind, title=e.title, body=e.body, url=e.url, source=e.source) for e in entries
    ]
    notes = list(
        await RecordNote.select()
        .where((RecordNote.model == model) & (RecordNote.record_id == record_id))
        .order_by(RecordNote.id, ascending=False)
        .limit(LIMIT)
    )
    audits = list(
        await AuditLog.select(
            AuditLog.id, AuditLog.at, AuditLog.action, AuditLog.user_id, AuditLog.user_login, AuditLog.changes
        )
        .where(
            (AuditLog.model == model)
            & (AuditLog.record_id == str(record_id))
            & AuditLog.action.not_in(sorted(NOT_CHANGES | _OWN))
        )
        .order_by(AuditLog.id, ascending=False)
        .limit(LIMIT)
    )
    people = await _names(
        {int(n["author_id"]) for n in notes if n["author_id"]} | {int(a["user_id"]) for a in audits if a["user_id"]}
    )
    for note in notes:
        items.append(
            Item(
                at=_aware(note["created_at"]),
                kind="note",
                title=i18n.gettext("Note"),
                body=str(note["body"]),
                author=people.get(int(note["author_id"] or 0), ""),
                source="core",
            )
        )
    reader = Reader(access)
    for row in audits:
        said = [] if row["action"] == "create" else await lines(reader, model, row["changes"])
        if not said and row["action"] != "create" and has_changes(row["changes"]):
            continue  # only fields this reader may not see changed
        who = people.get(int(row["user_id"] or 0)) or str(row["user_login"] or "")
        items.append(
            Item(
                at=_aware(row["at"]),
                kind="change",
                title=labels.action(str(row["action"])),
                author=who,
                changes=said,
                source="core",
            )
        )
    who_id = access.principal.user_id if access.principal else None
    followers = [
        int(r["user_id"])
        for r in await RecordFollower.select(RecordFollower.user_id).where(
            (RecordFollower.model == model) & (RecordFollower.record_id == record_id)
        )
    ]
    return RecordTimeline(
        model=model,
        record_id=record_id,
        url=url,
        items=sorted(items, key=lambda i: i.at, reverse=True)[: 2 * LIMIT],
        following=who_id in followers,
        followers=len(set(followers)),
    )
