"""Writing on a record's timeline: notes (with ``@login`` mentions), following a record, and telling followers.

- A note's author follows the record from then on. Each user it mentions is told, with a link to the record;
  only someone who may read the record can be mentioned: a note mentioning anyone else is refused whole,
  naming them (nothing is written).
- Followers are told of each note (but their own) and of each change the audit log records (but their own
  changes): :func:`audited` is called by :func:`core.security.audit.record` and, when the record has followers,
  asks the job ``core.timeline_changed`` to tell each of them, in their language and through their own field
  rules (a masked field's value reaches nobody who sees it masked; a follower who may no longer read the record
  is not told).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from piccolo.table import Table

from core import i18n, notifications
from core.errors import NotFound, PermissionDenied, ValidationError
from core.hooks import Notification
from core.i18n import N_
from core.security import audit
from core.security.access import Access, policy
from core.security.models import User
from core.timeline.changes import NOT_CHANGES, Reader, has_changes, lines
from core.timeline.models import RecordFollower, RecordNote

MAX_NOTE = 5000
SOURCE = "core.timeline"
#: ``@login`` at the start or after a space or punctuation (not inside an e-mail address)
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_][A-Za-z0-9_.\-]{0,149})")
_QUIET = NOT_CHANGES | {"note", "follow", "unfollow"}


def table_of(model: str) -> type[Table]:
    from core.limits import table_for

    table = table_for(model) if model in policy().models else None
    if table is None:
        raise NotFound(N_("%(model)s is not a kind of record") % {"model": model[:100]})
    return table


async def readable(access: Access, model: str, record_id: int) -> dict[str, Any]:
    """The record, when ``access`` may read it (404 otherwise, audited by the access layer)."""
    return await access.get(table_of(model), model, record_id, include_archived=True)


def _safe_url(url: str) -> str:
    return url[:500] if url.startswith("/") and not url.startswith("//") else ""


async def _may_read(user_id: int, model: str, record_id: int) -> Access | None:
    from core.security import principal

    who = await principal.load(user_id, implied=policy().implied)
    if who is None:
        return None
    acc = Access(who)
    try:
        await acc.get(table_of(model), model, record_id, include_archived=True)
    except (NotFound, PermissionDenied):
        return None
    return acc


async def mentioned(model: str, record_id: int, body: str) -> list[int]:
    """The users ``body`` mentions; refuses (422 on ``body``, naming them) someone unknown or who may not read
    the record."""
    logins = sorted({m.rstrip(".-") for m in _MENTION.findall(body)} - {""})
    if not logins:
        return []
    active = User.is_active == True  # noqa: E712  (Piccolo builds SQL from ==)
    rows = {
        str(r["login"]): int(r["id"])
        for r in await User.select(User.id, User.login).where(User.login.is_in(logins) & active)
    }
    unknown = [login for login in logins if login not in rows]
    if unknown:
        raise ValidationError(
            {"body": N_("nobody signs in as @%(login)s: check the name after @") % {"login": unknown[0]}}
        )
    for login in logins:
        if await _may_read(rows[login], model, record_id) is None:
            raise ValidationError(
                {
                    "body": N_("@%(login)s may not read this record, so they cannot be mentioned in a note on it")
                    % {"login": login}
                }
            )
    return sorted(set(rows.values()))


async def _language(user_id: int) -> str:
    from core.runtime import current

    row = await User.select(User.language).where(User.id == user_id).first()
    return str(row["language"] if row and row["language"] else current().settings.default_language)


async def _title(acc: Access, model: str, record_id: int) -> str:
    from core.timeline.changes import _NAMING

    table = table_of(model)
    reader = Reader(acc)
    name = (
        await reader._name(table, record_id)
        if any(c._meta.name in _NAMING for c in table._meta.columns)
        else f"#{record_id}"
    )
    from core import labels

    return f"{labels.model(model)} {name}"


async def _tell(
    user_id: int, acc: Access, model: str, record_id: int, subject: str, body: str, url: str, key: str, **params: Any
) -> None:
    """Tell ``user_id`` (reading through ``acc``) in their language."""
    lang = await _language(user_id)
    previous = i18n.language()
    i18n.set_language(lang)
    try:
        values = {**params, "record": await _title(acc, model, record_id)}
        await notifications.notify(
            Notification(
                user_id=user_id,
                title=(i18n.gettext(subject) % values)[:300],
                body=body,
                url=url or None,
                kind="timeline",
                source=SOURCE,
            ),
            dedup_key=key,
        )
    finally:
        i18n.set_language(previous)


async def add_note(access: Access, model: str, record_id: int, body: str, url: str = "") -> int:
    """Write a note on a record ``access`` may read; tell who it mentions and the followers. Returns its id."""
    who = access.principal
    if who is None:
        raise PermissionDenied(N_("not signed in"))
    await readable(access, model, record_id)
    from core import values

    text = (body or "").strip()
    problem = values.text_problem(text)
    if problem:
        raise ValidationError({"body": problem})
    if not text:
        raise ValidationError({"body": N_("is required")})
    if len(text) > MAX_NOTE:
        raise ValidationError({"body": N_("is longer than %(limit)s characters") % {"limit": MAX_NOTE}})
    mentions = await mentioned(model, record_id, text)
    page = _safe_url(url)
    rows = await RecordNote.insert(
        RecordNote(model=model, record_id=record_id, body=text, author_id=who.user_id, mentions=mentions, url=page)
    ).returning(RecordNote.id)
    note_id = int(rows[0]["id"])
    await audit.record("note", model=model, record_id=record_id, detail=f"note {note_id}", principal=who)
    await follow(access, model, record_id, page, check=False)
    excerpt = text if len(text) <= 300 else text[:299] + "…"
    # the mentioned are told they were mentioned, the other followers that a note was written; each once
    told = [(user_id, N_("%(author)s mentioned you on %(record)s"), page) for user_id in mentions]
    told += [(user_id, N_("%(author)s wrote a note on %(record)s"), page or follower_url)
             for user_id, follower_url in await _followers(model, record_id) if user_id not in mentions]
    for user_id, message, url in told:
        if user_id == who.user_id:
            continue
        acc = await _may_read(user_id, model, record_id)
        if acc is not None:
            await _tell(user_id, acc, model, record_id, message, excerpt, url, f"timeline:note:{note_id}:{user_id}",
                        author=who.name)
    return note_id


async def _followers(model: str, record_id: int) -> list[tuple[int, str]]:
    seen: dict[int, str] = {}
    for r in await RecordFollower.select(RecordFollower.user_id, RecordFollower.url).where(
        (RecordFollower.model == model) & (RecordFollower.record_id == record_id)
    ):
        seen.setdefault(int(r["user_id"]), str(r["url"] or ""))
    return sorted(seen.items())


async def follow(access: Access, model: str, record_id: int, url: str = "", *, check: bool = True) -> bool:
    """``access``'s user follows the record (once); True when they did not before."""
    who = access.principal
    if who is None:
        raise PermissionDenied(N_("not signed in"))
    if check:
        await readable(access, model, record_id)
    if await RecordFollower.exists().where(
        (RecordFollower.model == model)
        & (RecordFollower.record_id == record_id)
        & (RecordFollower.user_id == who.user_id)
    ):
        return False
    await RecordFollower.insert(
        RecordFollower(model=model, record_id=record_id, user_id=who.user_id, url=_safe_url(url))
    )
    await audit.record("follow", model=model, record_id=record_id, principal=who)
    return True


async def unfollow(access: Access, model: str, record_id: int) -> bool:
    who = access.principal
    if who is None:
        raise PermissionDenied(N_("not signed in"))
    gone = (
        await RecordFollower.delete()
        .where(
            (RecordFollower.model == model)
            & (RecordFollower.record_id == record_id)
            & (RecordFollower.user_id == who.user_id)
        )
        .returning(RecordFollower.id)
    )
    if gone:
        await audit.record("unfollow", model=model, record_id=record_id, principal=who)
    return bool(gone)


async def merged(model: str, loser_ids: Sequence[int], survivor_id: int) -> None:
    """Records merged into ``survivor_id``: their notes move to it, and their followers follow it (once each),
    so a merge loses no one's note and no one's follow. Called by the addon that merges, in its transaction."""
    losers = [int(i) for i in loser_ids if int(i) != survivor_id]
    if not losers:
        return
    await RecordNote.update({RecordNote.record_id: survivor_id}).where(
        (RecordNote.model == model) & RecordNote.record_id.is_in(losers))
    have = {int(r["user_id"]) for r in await RecordFollower.select(RecordFollower.user_id).where(
        (RecordFollower.model == model) & (RecordFollower.record_id == survivor_id))}
    for row in await RecordFollower.select(RecordFollower.id, RecordFollower.user_id).where(
            (RecordFollower.model == model) & RecordFollower.record_id.is_in(losers)):
        if int(row["user_id"]) in have:
            await RecordFollower.delete().where(RecordFollower.id == row["id"])
        else:
            have.add(int(row["user_id"]))
            await RecordFollower.update({RecordFollower.record_id: survivor_id}).where(RecordFollower.id == row["id"])


async def add_imported(model: str, notes: Sequence[tuple[int, str]], author_id: int | None) -> None:
    """Notes that arrived with imported rows (``(record_id, body)``), in one INSERT: nobody is mentioned or told,
    the import's own audit lines say where they came from."""
    rows = [RecordNote(model=model, record_id=record_id, body=body, author_id=author_id)
            for record_id, body in notes if body.strip()]
    if rows:
        await RecordNote.insert(*rows)


async def notes_of(model: str, record_id: int) -> list[dict[str, Any]]:
    """A record's notes, oldest first (body, author, time): what a data-subject export includes."""
    return list(await RecordNote.select(RecordNote.id, RecordNote.body, RecordNote.author_id, RecordNote.created_at)
                .where((RecordNote.model == model) & (RecordNote.record_id == record_id)).order_by(RecordNote.id))


async def erased(model: str, record_id: int) -> None:
    """A record erased for good (a data subject's request): its notes and followers go with it."""
    await RecordNote.delete().where((RecordNote.model == model) & (RecordNote.record_id == record_id))
    await RecordFollower.delete().where((RecordFollower.model == model) & (RecordFollower.record_id == record_id))


async def audited(action: str, model: str, record_id: str, changes: dict[str, Any] | None, user_id: int | None) -> None:
    """Called for each audit row: a change of a followed record asks for its followers to be told. Inside a
    transaction the changes are gathered and looked up once, just before it commits (one indexed query for all
    the records it changed); outside one, now."""
    await audited_many(action, model, {record_id: changes or {}}, user_id)


async def audited_many(action: str, model: str, changes: Mapping[Any, dict[str, Any]], user_id: int | None) -> None:
    """:func:`audited` for the rows of one bulk write (``record id → changes``): still one lookup."""
    from core import db

    if action in _QUIET or not model:
        return
    found = [
        (model, int(str(rid)), action, diff or {}, user_id)
        for rid, diff in changes.items()
        if str(rid).isdigit() and len(str(rid)) <= 18
    ]
    if not found:
        return
    state = db.transaction_state()
    if state is None:
        await _ask(found)
        return
    pending: list[tuple[str, int, str, dict[str, Any], int | None]] | None = state.get("timeline")
    if pending is None:
        pending = state["timeline"] = []
        db.before_commit(lambda: _ask(pending or []))
    pending.extend(found)


async def _ask(changes: list[tuple[str, int, str, dict[str, Any], int | None]]) -> None:
    from core import jobs
    from core.bulk import any_of

    if not changes:
        return
    ids = sorted({record_id for _, record_id, _, _, _ in changes})
    which = RecordFollower.record_id == ids[0] if len(ids) == 1 else any_of(RecordFollower.record_id, ids)
    followed = {
        (str(r["model"]), int(r["record_id"]))
        for r in await RecordFollower.select(RecordFollower.model, RecordFollower.record_id).where(which)
    }
    for model, record_id, action, diff, user_id in changes:
        if (model, record_id) in followed:
            await jobs.enqueue(
                "core.timeline_changed",
                model=model,
                record_id=record_id,
                action=action,
                changes=json.loads(json.dumps(diff, default=str)),
                by=user_id,
                key=uuid.uuid4().hex,
            )
    changes.clear()


async def tell_followers(
    model: str, record_id: int, action: str, changes: dict[str, Any], by: int | None, key: str
) -> int:
    """The job ``core.timeline_changed``: each follower but the author of the change is told what changed, as
    they may see it. Returns how many were told (a retry tells nobody twice: one dedup key per follower)."""
    from core import labels

    told = 0
    names = {int(r["id"]): str(r["name"]) for r in await User.select(User.id, User.name).where(User.id == (by or -1))}
    for user_id, url in await _followers(model, record_id):
        if user_id == by:
            continue
        acc = await _may_read(user_id, model, record_id)
        if acc is None:
            continue
        previous = i18n.language()
        i18n.set_language(await _language(user_id))
        try:
            said = await lines(Reader(acc), model, changes) if action != "create" else []
            if not said and action != "create" and has_changes(changes):
                continue  # only fields this follower may not see changed
            body = "; ".join(f"{line.label}: {line.old} → {line.new}" for line in said)
            what = labels.action(action)
        finally:
            i18n.set_language(previous)
        await _tell(
            user_id,
            acc,
            model,
            record_id,
            N_("%(action)s by %(author)s: %(record)s"),
            body[:2000],
            url,
            f"timeline:change:{key}:{user_id}",
            action=what,
            author=names.get(by or -1) or i18n.in_language(await _language(user_id), N_("the system")),
        )
        told += 1
    return told
