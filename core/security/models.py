"""Tables of the security kernel: users, roles, teams, sessions, API tokens, audit log, login attempts."""

from __future__ import annotations

from piccolo.columns import JSON, BigInt, Boolean, ForeignKey, Integer, OnDelete, Serial, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class User(Table, tablename="core_user"):
    """A person who logs in. Preferences: ``language`` (``""`` until the first login stores the browser's),
    ``timezone`` (an IANA name; ``""`` follows the site's ``CRM_TIMEZONE``), ``has_email_notifications``."""

    id: Serial
    login = Varchar(length=150, unique=True)
    name = Varchar(length=200)
    email = Varchar(length=254, default="")
    password_hash = Varchar(length=200, default="", secret=True)
    language = Varchar(length=10, default="")
    timezone = Varchar(length=64, default="")
    has_email_notifications = Boolean(default=True)
    is_active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)
    version = Integer(default=1)


class CustomRole(Table, tablename="core_role"):
    """A role defined by an administrator (addons declare theirs in code): a bundle of implied roles."""

    id: Serial
    name = Varchar(length=100, unique=True)
    label = Varchar(length=200)
    implies = JSON(default="[]")


class UserRole(Table, tablename="core_user_role"):
    id: Serial
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    role = Varchar(length=100)


class Team(Table, tablename="core_team"):
    id: Serial
    name = Varchar(length=200, unique=True)
    leader = ForeignKey(User, null=True, on_delete=OnDelete.set_null)


class TeamMember(Table, tablename="core_team_member"):
    id: Serial
    team = ForeignKey(Team, on_delete=OnDelete.cascade)
    user = ForeignKey(User, on_delete=OnDelete.cascade)


class Session(Table, tablename="core_session"):
    """A server-side session; the cookie holds a random token whose hash is ``token_hash``."""

    id: Serial
    token_hash = Varchar(length=64, unique=True)
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    csrf_token = Varchar(length=64)
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    revoked_at = Timestamptz(null=True, default=None)
    ip = Varchar(length=64, default="")
    user_agent = Varchar(length=300, default="")


class ApiToken(Table, tablename="core_api_token"):
    """A bearer token for integrations, shown once and stored hashed; ``roles`` narrows the user's roles."""

    id: Serial
    user = ForeignKey(User, on_delete=OnDelete.cascade)
    name = Varchar(length=200)
    prefix = Varchar(length=16)
    token_hash = Varchar(length=64, unique=True)
    roles = JSON(default="[]")
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    last_used_at = Timestamptz(null=True, default=None)


class AuditLog(Table, tablename="core_audit_log"):
    """Append-only: the app has no path that updates or deletes a row (and PostgreSQL refuses it)."""

    id: Serial
    at = Timestamptz(default=TimestamptzNow(), index=True)
    user_id = BigInt(null=True, default=None, index=True)
    user_login = Varchar(length=150, default="")
    action = Varchar(length=40, index=True)
    model = Varchar(length=100, default="", index=True)
    record_id = Varchar(length=64, default="")
    changes = JSON(default="{}")
    detail = Text(default="")
    ip = Varchar(length=64, default="")
    request_id = Varchar(length=64, default="")


class LoginAttempt(Table, tablename="core_login_attempt"):
    """Failed logins, counted in the database so every worker process sees the same throttle."""

    id: Serial
    key = Varchar(length=200, index=True)
    at = Timestamptz(default=TimestamptzNow(), index=True)
