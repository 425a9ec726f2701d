"""The audit log: append-only rows for writes, deletes, merges, exports, reveals, logins and denials.

A refusal is usually raised inside a transaction that then rolls back, which would take its audit row with it.
So refusals (denials, failed logins and authentications, CSRF failures) recorded inside a transaction during
a request are held and written when the request ends (:func:`collecting` / :func:`flush`, used by the
security middleware). Writes are recorded in their own transaction: if it rolls back, nothing happened.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any

from core import db, jsontext, versions
from core.bulk import copy_rows
from core.security import context
from core.security.models import AuditLog
from core.security.principal import Principal

REFUSALS = frozenset({"denied", "login_failed", "login_throttled", "auth_failed", "csrf_failed"})
#: audited actions that change nothing (every other one with a model counts as a write of it)
_READS = frozenset({"export", "read", "reveal", "search", "send_test", "notify_failed", "portal_login"})
_held: ContextVar[list[AuditLog] | None] = ContextVar("crm_audit_held", default=None)


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime, decimal.Decimal)):
        return str(value)
    return value


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """``{"field": [old, new]}`` for every field that changed (JSON-safe)."""
    before, after = before or {}, after or {}
    out: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            out[key] = [_plain(old), _plain(new)]
    return out


async def record(action: str, *, model: str = "", record_id: object = "", changes: dict[str, Any] | None = None,
                 detail: str = "", principal: Principal | None = None, login: str = "") -> None:
    """Append one entry: who (the request's principal unless given), what, when, IP and request id."""
    ctx = context.get()
    who = principal or ctx.principal
    row = AuditLog(
        user_id=who.user_id if who else None, user_login=who.login if who else login[:150], action=action,
        model=model, record_id=str(record_id)[:64], changes=json.loads(json.dumps(changes or {}, default=str)),
        detail=detail[:2000], ip=ctx.ip, request_id=ctx.request_id)
    held = _held.get()
    if held is not None and action in REFUSALS and db.in_atomic():
        held.append(row)
        return
    await AuditLog.insert(row)
    if model and action not in REFUSALS:
        if action not in _READS:  # figures over the model are stale once this write commits
            await versions.bump(versions.model_key(model), versions.table_key(AuditLog._meta.tablename))
        from core.timeline.notes import audited  # followers of the record hear of its changes

        await audited(action, model, str(record_id), changes, who.user_id if who else None)


async def record_many(action: str, *, model: str, changes: Mapping[object, dict[str, Any]], detail: str = "",
                      principal: Principal | None = None) -> None:
    """One entry per record (``record id → changes``) in one multi-row INSERT: a bulk writer (an import, a
    sync) audits each record as a single write would, without a statement per record."""
    ctx = context.get()
    who = principal or ctx.principal
    base = {"user_id": who.user_id if who else None, "user_login": who.login if who else "", "action": action,
            "model": model, "detail": detail[:2000], "ip": ctx.ip, "request_id": ctx.request_id}
    # COPY on PostgreSQL; the changes as JSON text, serialized once (a JSON column takes text as it is) by orjson
    await copy_rows(AuditLog, [base | {"record_id": str(record_id)[:64], "changes": jsontext.dumps(diff)}
                               for record_id, diff in changes.items()], keys=False)
    await versions.bump(versions.model_key(model))
    from core.timeline.notes import audited_many  # followers of the records hear of their changes

    await audited_many(action, model, changes, who.user_id if who else None)


def collecting() -> Token[list[AuditLog] | None]:
    """Start holding refusals recorded inside transactions (call at the start of a request)."""
    return _held.set([])


async def flush(token: Token[list[AuditLog] | None]) -> None:
    """Write the held refusals (call when the request is done, outside any transaction)."""
    held = _held.get() or []
    _held.reset(token)
    if held:
        await AuditLog.insert(*held)
