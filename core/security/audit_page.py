"""The audit log page (admins and auditors): filters by who, model, action, record, detail and a date range in the
reader's time zone; keyset pages (newer/older, never an OFFSET over an append-only table that grows without end);
each change in words ("Stage: Quoted → Negotiation") as the reader may see it (``core.timeline.changes``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from core import formatting, labels
from core.i18n import N_
from core.search import contains
from core.security.access import Access
from core.security.models import AuditLog, User
from core.web import render, require_user

PAGE = 50
#: bookkeeping fields a diff carries that nobody reads (``*_key`` columns, lookup keys, are left out too)
_DERIVED = frozenset({"version", "updated_at", "search_text", "stage_entered_at"})
#: fields whose values are shown as they are, never translated: identifiers (a login is a name to type, not
#: words) and languages, named in their own language as a language picker does ("English", "简体中文")
IDENTIFIERS = frozenset({"login", "user_login", "key", "code", "email", "timezone", "language"})
_TEXT_FILTERS = (("action", AuditLog.action), ("model", AuditLog.model), ("record", AuditLog.record_id),
                 ("user", AuditLog.user_login))


def _day(raw: str, name: str, errors: dict[str, str]) -> dt.date | None:
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        errors[name] = N_("must be a date like 2026-12-01")
        return None


def _cursor(raw: str, name: str, errors: dict[str, str]) -> int | None:
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        errors[name] = N_("must be a whole number")
        return None
    return int(raw)


def _where(q: Any, errors: dict[str, str]) -> list[Any]:
    """The filters of the query string as where-clauses; a bad value named in ``errors`` (and not applied)."""
    clauses = [column == q[name][:150] for name, column in _TEXT_FILTERS if q.get(name)]
    if q.get("q"):
        clauses.append(contains(AuditLog.detail, q["q"][:100]))
    since, until = _day(q.get("since", ""), "since", errors), _day(q.get("until", ""), "until", errors)
    if since and until and until < since:
        errors["until"] = N_("must not be before the start date")
        return clauses
    zone = formatting.zone()  # whole days of the reader's calendar
    if since:
        clauses.append(AuditLog.at >= dt.datetime.combine(since, dt.time.min, tzinfo=zone))
    if until:
        clauses.append(AuditLog.at < dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=zone))
    return clauses


def _models() -> list[tuple[str, str]]:
    """(model, label) of every model the installed addons grant rights on and the kernel's, by label."""
    from core.errors import ConfigError
    from core.runtime import current

    found = set(labels.KERNEL_MODELS)
    try:
        for addon in current().addons:
            found |= {g.model for g in addon.permissions}
    except ConfigError:
        pass
    return sorted(((m, labels.model(m)) for m in found), key=lambda pair: pair[1])


async def _kernel_words(rows: list[dict[str, Any]]) -> None:
    """The kernel's own values in words before they are formatted: a user's roles by their labels and language
    by its name, a team's members by their names (their diffs hold role keys, language codes and user ids)."""
    from core import i18n
    from core.security.access import policy
    from core.security.account import LANGUAGE_NAMES

    roles = policy().roles
    wanted: set[int] = set()
    for r in rows:
        members = r["changes"].get("members") if r["model"] == "core.team" else None
        for side in members or ():
            wanted |= {int(i) for i in side or () if str(i).isdigit()}
    names = {u["id"]: u["name"] for u in await User.select(User.id, User.name).where(
        User.id.is_in(sorted(wanted)))} if wanted else {}

    def words(field: str, side: Any) -> Any:
        if not isinstance(side, list):
            return side
        if field == "roles":
            return ", ".join(i18n.gettext(roles[k].label) if k in roles else str(k) for k in side) or None
        return ", ".join(str(names.get(int(i), f"#{i}")) for i in side if str(i).isdigit()) or None

    for r in rows:
        field = {"core.user": "roles", "core.team": "members"}.get(r["model"])
        pair = r["changes"].get(field) if field else None
        if field and isinstance(pair, list) and len(pair) == 2:
            r["changes"] = {**r["changes"], field: [words(field, side) for side in pair]}
        language = r["changes"].get("language") if r["model"] == "core.user" else None
        if isinstance(language, list) and len(language) == 2:
            r["changes"] = {**r["changes"], "language": [LANGUAGE_NAMES.get(v, v) if isinstance(v, str) else v
                                                         for v in language]}


async def audit_list(request: Request) -> Response:
    """Search the audit log (admin, auditor): newest first, ``before``/``after`` an entry id for the next pages."""
    from core.timeline import changes

    acc = Access(require_user(request))
    await acc.require("core.audit_log", "read")
    q = request.query_params
    errors: dict[str, str] = {}
    clauses = _where(q, errors)
    before, after = _cursor(q.get("before", ""), "before", errors), _cursor(q.get("after", ""), "after", errors)
    query = AuditLog.select()
    for clause in clauses:
        query = query.where(clause)
    if after is not None and before is None:  # a page of newer entries: read upwards, shown newest first
        rows = list(reversed(await query.where(AuditLog.id > after).order_by(AuditLog.id).limit(PAGE + 1)))
        newer, older = len(rows) > PAGE, True
        rows = rows[-PAGE:] if newer else rows
    else:
        if before is not None:
            query = query.where(AuditLog.id < before)
        rows = await query.order_by(AuditLog.id, ascending=False).limit(PAGE + 1)
        newer, older = before is not None, len(rows) > PAGE
        rows = rows[:PAGE]
    rows = [{**r, "changes": _loaded(r["changes"])} for r in rows]
    await _kernel_words(rows)
    await changes.remember_choices()
    reader = changes.Reader(acc)
    entries = [{**r, "action_label": labels.action(r["action"]), "model_label": labels.model(r["model"]),
                "lines": await _lines(reader, r) if r["action"] not in changes.NOT_CHANGES else []} for r in rows]
    kept = {k: v for k, v in q.items() if k not in ("before", "after") and v}
    users = await User.select(User.login, User.name).order_by(User.login).limit(1000)
    return await render(request, "core/admin_audit.html", status=422 if errors else 200, rows=entries,
                        filters=kept, errors=errors, page_size=PAGE, users=users, models=_models(),
                        actions=sorted(labels.ACTION_LABELS, key=labels.action),
                        newer=entries[0]["id"] if newer and entries else None,
                        older=entries[-1]["id"] if older and entries else None, labels=labels,
                        identifiers=IDENTIFIERS)


async def _lines(reader: Any, row: dict[str, Any]) -> list[Any]:
    """An entry's changes in words; a field the reader may not see is still named as changed (an auditor's
    job is to know that it changed), its values shown as hidden."""
    from core import i18n
    from core.customfields import registry as custom_fields
    from core.timeline import changes

    shown = await changes.lines(reader, row["model"], row["changes"])
    named = {line.field for line in shown}
    custom = custom_fields.column_of(row["model"])
    hidden = i18n.gettext("hidden")
    for field, pair in row["changes"].items():
        if (field in named or field == custom or field in _DERIVED or field.endswith("_key")
                or not isinstance(pair, list) or len(pair) != 2 or pair[0] == pair[1]):
            continue
        shown.append(changes.ChangeLine(field, changes.field_label(row["model"], field), hidden, hidden))
    return shown


def _loaded(raw: Any) -> dict[str, Any]:
    import json

    value = json.loads(raw or "{}") if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}
