"""Server-side sessions and API tokens: random secrets given out once, only their hashes stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationError
from core.i18n import N_
from core.security.models import ApiToken, LoginAttempt, Session, User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


#: a session's idle timer and a token's ``last_used_at`` are written at most once per this many seconds: a
#: read writes nothing else
TOUCH_SECONDS = 60
_GENERATION = "(SELECT value FROM core_security_generation WHERE id = 1) AS generation"
_touched: dict[str, float] = {}  # what this process last wrote, so a burst writes once


@dataclass(frozen=True)
class SessionInfo:
    session_id: int
    user_id: int
    csrf_token: str
    #: the security generation read with the session (core.security.principal.cached)
    generation: int = -1


@dataclass(frozen=True)
class TokenInfo:
    token_id: int
    user_id: int
    roles: frozenset[str]
    generation: int = -1


def _stale(key: str, last: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a timestamp last written at ``last`` is due (and not just written by this process); ``key``
    is the row's token hash."""
    if last is not None and now - last < dt.timedelta(seconds=TOUCH_SECONDS):
        return False
    clock = time.monotonic()
    if key in _touched and clock - _touched[key] < TOUCH_SECONDS:
        return False
    if len(_touched) > 100_000:
        _touched.clear()
    _touched[key] = clock
    return True


async def open_session(user_id: int, *, ip: str = "", user_agent: str = "") -> tuple[str, str]:
    """Start a session; returns (cookie token, csrf token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await Session.insert(Session(token_hash=_hash(token), user=user_id, csrf_token=csrf, ip=ip[:64],
                                 user_agent=user_agent[:300]))
    await User.update({User.last_login_at: _now()}).where(User.id == user_id)
    return token, csrf


async def resolve(token: str, *, idle_minutes: int, absolute_hours: int) -> SessionInfo | None:
    """The live session behind a cookie token, touching its idle timer (at most once a minute); None if
    unknown, revoked or expired. One query, which also reads the security generation."""
    if not token or len(token) > 200:
        return None
    rows = await Session.raw(
        f'SELECT s.id, s."user", s.csrf_token, s.created_at, s.last_seen_at, s.revoked_at, u.is_active, '
        f'{_GENERATION} FROM core_session s JOIN core_user u ON u.id = s."user" WHERE s.token_hash = {{}}',
        _hash(token))
    row = rows[0] if rows else None
    if row is None or row["revoked_at"] is not None or not row["is_active"]:
        return None
    now = _now()
    created, seen = _timestamp(row["created_at"]), _timestamp(row["last_seen_at"])
    if now - created > dt.timedelta(hours=absolute_hours) or now - seen > dt.timedelta(minutes=idle_minutes):
        await Session.update({Session.revoked_at: now}).where(Session.id == row["id"])
        return None
    if _stale(_hash(token), seen, now):
        cutoff = now - dt.timedelta(seconds=TOUCH_SECONDS)
        await Session.update({Session.last_seen_at: now}).where(
            (Session.id == row["id"]) & (Session.last_seen_at < cutoff))
    return SessionInfo(session_id=row["id"], user_id=row["user"], csrf_token=row["csrf_token"],
                       generation=_generation(row))


def _generation(row: dict[str, Any]) -> int:
    value = row.get("generation")
    return -1 if value is None else int(value)


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return _aware(value)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def revoke(session_id: int) -> None:
    await Session.update({Session.revoked_at: _now()}).where(Session.id == session_id)


async def revoke_user(user_id: int) -> int:
    rows = await Session.update({Session.revoked_at: _now()}).where(
        (Session.user == user_id) & Session.revoked_at.is_null()).returning(Session.id)
    return len(rows)


async def reserve_attempt(keys: Sequence[str], *, limit: int, window_seconds: int) -> tuple[list[int], str | None]:
    """Count a login attempt against each of ``keys`` *before* its password is checked.

    The attempt's rows are inserted (and committed) first, then the window is counted: of N attempts made in
    parallel, the k-th to commit sees at least k rows, so no more than ``limit`` get through however they are
    timed (counting first and writing after a failed check let every parallel attempt see the same old
    count). Returns the new rows' ids and ``None``, or ``[]`` and the first key past ``limit``; a refused
    attempt's rows are removed at once, so only attempts that reached the password check count.
    """
    rows = await LoginAttempt.insert(*[LoginAttempt(key=key[:200]) for key in keys]).returning(LoginAttempt.id)
    ids = [int(r["id"]) for r in rows]
    since = _now() - dt.timedelta(seconds=window_seconds)
    for key in keys:
        count = await LoginAttempt.count().where((LoginAttempt.key == key[:200]) & (LoginAttempt.at > since))
        if int(count) > limit:
            await release_attempt(ids)
            return [], key
    return ids, None


async def release_attempt(ids: Sequence[int]) -> None:
    """Take back the rows of an attempt that did not fail (it was refused, or the password was right)."""
    if ids:
        await LoginAttempt.delete().where(LoginAttempt.id.is_in(list(ids)))


async def clear_failures(key: str) -> None:
    await LoginAttempt.delete().where(LoginAttempt.key == key)


async def create_token(user_id: int, name: str, *, roles: list[str], days: int | None = 90) -> str:
    """Create an API token; the secret is returned once and never stored in clear."""
    if not name.strip():
        raise ValidationError({"name": N_("is required")})
    secret = "crm_" + secrets.token_urlsafe(32)
    expires = _now() + dt.timedelta(days=days) if days else None
    await ApiToken.insert(ApiToken(user=user_id, name=name.strip(), prefix=secret[:12], token_hash=_hash(secret),
                                   roles=roles, expires_at=expires))
    return secret


async def resolve_token(secret: str) -> TokenInfo | None:
    """The live token behind ``secret`` (its user, role scope and the security generation, read in one query),
    or None. Its ``last_used_at`` is written at most once a minute."""
    if not secret.startswith("crm_") or len(secret) > 200:
        return None
    rows = await ApiToken.raw(
        f'SELECT id, "user", roles, expires_at, revoked_at, last_used_at, {_GENERATION} '
        f"FROM core_api_token WHERE token_hash = {{}}", _hash(secret))
    row = rows[0] if rows else None
    if row is None or row["revoked_at"] is not None:
        return None
    now = _now()
    if row["expires_at"] is not None and _timestamp(row["expires_at"]) < now:
        return None
    roles = row["roles"]
    roles = json.loads(roles) if isinstance(roles, str) else roles
    last = _timestamp(row["last_used_at"]) if row["last_used_at"] is not None else None
    if _stale(_hash(secret), last, now):
        cutoff = now - dt.timedelta(seconds=TOUCH_SECONDS)
        await ApiToken.update({ApiToken.last_used_at: now}).where(
            (ApiToken.id == row["id"]) & (ApiToken.last_used_at.is_null() | (ApiToken.last_used_at < cutoff)))
    return TokenInfo(token_id=int(row["id"]), user_id=int(row["user"]), roles=frozenset(roles or ()),
                     generation=_generation(row))


async def revoke_token(token_id: int, user_id: int | None = None) -> bool:
    where: Any = ApiToken.id == token_id
    if user_id is not None:
        where = where & (ApiToken.user == user_id)
    rows = await ApiToken.update({ApiToken.revoked_at: _now()}).where(where).returning(ApiToken.id)
    return bool(rows)
