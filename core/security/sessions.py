"""Server-side sessions and API tokens: random secrets given out once, only their hashes stored."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
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


@dataclass(frozen=True)
class SessionInfo:
    session_id: int
    user_id: int
    csrf_token: str


async def open_session(user_id: int, *, ip: str = "", user_agent: str = "") -> tuple[str, str]:
    """Start a session; returns (cookie token, csrf token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await Session.insert(Session(token_hash=_hash(token), user=user_id, csrf_token=csrf, ip=ip[:64],
                                 user_agent=user_agent[:300]))
    await User.update({User.last_login_at: _now()}).where(User.id == user_id)
    return token, csrf


async def resolve(token: str, *, idle_minutes: int, absolute_hours: int) -> SessionInfo | None:
    """The live session behind a cookie token, touching its idle timer; None if unknown, revoked or expired."""
    if not token or len(token) > 200:
        return None
    row = await Session.select(Session.id, Session.user, Session.csrf_token, Session.created_at,
                               Session.last_seen_at, Session.revoked_at,
                               Session.user.is_active.as_alias("is_active")).where(
        Session.token_hash == _hash(token)).first()
    if row is None or row["revoked_at"] is not None or not row["is_active"]:
        return None
    now = _now()
    created, seen = _aware(row["created_at"]), _aware(row["last_seen_at"])
    if now - created > dt.timedelta(hours=absolute_hours) or now - seen > dt.timedelta(minutes=idle_minutes):
        await Session.update({Session.revoked_at: now}).where(Session.id == row["id"])
        return None
    if now - seen > dt.timedelta(seconds=30):  # spare a write per request
        await Session.update({Session.last_seen_at: now}).where(Session.id == row["id"])
    return SessionInfo(session_id=row["id"], user_id=row["user"], csrf_token=row["csrf_token"])


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


async def resolve_token(secret: str) -> tuple[int, frozenset[str]] | None:
    """(user id, role scope) of a live token, or None."""
    if not secret.startswith("crm_") or len(secret) > 200:
        return None
    row = await ApiToken.select(ApiToken.id, ApiToken.user, ApiToken.roles, ApiToken.expires_at,
                                ApiToken.revoked_at).where(ApiToken.token_hash == _hash(secret)).first()
    if row is None or row["revoked_at"] is not None:
        return None
    if row["expires_at"] is not None and _aware(row["expires_at"]) < _now():
        return None
    import json

    roles = row["roles"]
    roles = json.loads(roles) if isinstance(roles, str) else roles
    await ApiToken.update({ApiToken.last_used_at: _now()}).where(ApiToken.id == row["id"])
    return int(row["user"]), frozenset(roles)


async def revoke_token(token_id: int, user_id: int | None = None) -> bool:
    where: Any = ApiToken.id == token_id
    if user_id is not None:
        where = where & (ApiToken.user == user_id)
    rows = await ApiToken.update({ApiToken.revoked_at: _now()}).where(where).returning(ApiToken.id)
    return bool(rows)
