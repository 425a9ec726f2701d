"""User, role and team management (used by the admin pages, the CLI and the demo)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from typing import Any

from core import db, formatting, i18n
from core.errors import Conflict, NotFound, ValidationError
from core.i18n import N_
from core.security import audit, sessions
from core.security.models import CustomRole, Session, Team, TeamMember, User, UserRole
from core.security.passwords import check_policy, hash_password, verify


async def create_user(login: str, name: str, password: str, *, roles: list[str] | tuple[str, ...] = (),
                      email: str = "", language: str = "", known_roles: set[str] | None = None) -> int:
    login = login.strip()
    if not login:
        raise ValidationError({"login": N_("is required")})
    if len(login) > 150:
        raise ValidationError({"login": N_("is longer than 150 characters")})
    check_policy(password, login=login)
    if known_roles is not None:
        check_roles(roles, known_roles)
    async with db.atomic():
        if await User.exists().where(User.login == login):
            raise Conflict(N_("a user with login %(login)s exists already") % {"login": repr(login)})
        rows = await User.insert(User(login=login, name=name.strip() or login, email=email.strip(),
                                      language=language, password_hash=hash_password(password))).returning(User.id)
        user_id = int(rows[0]["id"])
        for role in roles:
            await UserRole.insert(UserRole(user=user_id, role=role))
        await audit.record("create", model="core.user", record_id=user_id,
                           changes={"login": [None, login], "roles": [None, list(roles)]})
    return user_id


async def set_roles(user_id: int, roles: list[str], *, known_roles: set[str] | None = None) -> None:
    if known_roles is not None:
        check_roles(roles, known_roles)
    async with db.atomic():
        if not await User.exists().where(User.id == user_id):
            raise NotFound(N_("user %(id)s not found") % {"id": user_id})
        before = [r["role"] for r in await UserRole.select(UserRole.role).where(UserRole.user == user_id)]
        await UserRole.delete().where(UserRole.user == user_id)
        for role in sorted(set(roles)):
            await UserRole.insert(UserRole(user=user_id, role=role))
        if sorted(before) != sorted(set(roles)):
            await audit.record("update", model="core.user", record_id=user_id,
                               changes={"roles": [sorted(before), sorted(set(roles))]})


async def set_active(user_id: int, active: bool) -> None:
    """Deactivating a user ends every session of theirs at once."""
    async with db.atomic():
        if not await User.exists().where(User.id == user_id):
            raise NotFound(N_("user %(id)s not found") % {"id": user_id})
        await User.update({User.is_active: active}).where(User.id == user_id)
        if not active:
            await sessions.revoke_user(user_id)
        await audit.record("update", model="core.user", record_id=user_id, changes={"is_active": [not active, active]})


async def set_password(user_id: int, password: str) -> None:
    login = await User.select(User.login).where(User.id == user_id).first()
    if login is None:
        raise NotFound(N_("user %(id)s not found") % {"id": user_id})
    check_policy(password, login=login["login"])
    async with db.atomic():
        await User.update({User.password_hash: hash_password(password)}).where(User.id == user_id)
        await sessions.revoke_user(user_id)
        await audit.record("password_change", model="core.user", record_id=user_id)


async def create_team(name: str, *, leader: int | None = None, members: list[int] | tuple[int, ...] = ()) -> int:
    if not name.strip():
        raise ValidationError({"name": N_("is required")})
    async with db.atomic():
        if await Team.exists().where(Team.name == name.strip()):
            raise Conflict(N_("a team named %(name)s exists already") % {"name": repr(name.strip())})
        rows = await Team.insert(Team(name=name.strip(), leader=leader)).returning(Team.id)
        team_id = int(rows[0]["id"])
        for member in sorted(set(members)):
            await TeamMember.insert(TeamMember(team=team_id, user=member))
        await audit.record("create", model="core.team", record_id=team_id,
                           changes={"name": [None, name.strip()], "leader": [None, leader],
                                    "members": [None, sorted(set(members))]})
    return team_id


async def update_user(user_id: int, *, name: str, email: str, language: str) -> None:
    async with db.atomic():
        before = await User.select(User.name, User.email, User.language).where(User.id == user_id).first()
        if before is None:
            raise NotFound(N_("user %(id)s not found") % {"id": user_id})
        after = {"name": name.strip() or before["name"], "email": email.strip(), "language": language or "en"}
        await User.update({User.name: after["name"], User.email: after["email"],
                           User.language: after["language"]}).where(User.id == user_id)
        changes = audit.diff(dict(before), after)
        if changes:
            await audit.record("update", model="core.user", record_id=user_id, changes=changes)


async def adopt_language(user_id: int, accept_language: str | None, default: str) -> None:
    """At login: a user without a language yet (``""``, as created) keeps the one the browser asks for."""
    await User.update({User.language: i18n.negotiate(accept_language, default)}).where(
        (User.id == user_id) & (User.language == ""))


async def set_preferences(user_id: int, *, language: str, timezone: str, has_email_notifications: bool) -> None:
    """One's own preferences. ``language``: one of :data:`core.i18n.LANGUAGES` (``zh-CN`` is ``zh_CN``);
    ``timezone``: an IANA name, or ``""`` for the site's. Raises ValidationError naming each bad field."""
    language = language.strip().replace("-", "_")
    timezone = timezone.strip()
    errors: dict[str, str] = {}
    if language not in i18n.LANGUAGES:
        errors["language"] = "Choose one of the offered languages."
    if timezone and not formatting.is_timezone(timezone):
        errors["timezone"] = "Unknown time zone: use an IANA name such as Asia/Shanghai."
    if errors:
        raise ValidationError(errors)
    async with db.atomic():
        before = await User.select(User.language, User.timezone, User.has_email_notifications).where(
            User.id == user_id).first()
        if before is None:
            raise NotFound(N_("user %(id)s not found") % {"id": user_id})
        after = {"language": language, "timezone": timezone, "has_email_notifications": has_email_notifications}
        changes = audit.diff(dict(before), after)
        if changes:
            await User.update({User.language: language, User.timezone: timezone,
                               User.has_email_notifications: has_email_notifications}).where(User.id == user_id)
            await audit.record("update", model="core.user", record_id=user_id, changes=changes)


async def change_own_password(user_id: int, current: str, new: str, *, confirm: str | None = None,
                              keep_session: int | None = None) -> int:
    """Replace one's password after checking the current one; every other session of the user ends (the one
    making the change, ``keep_session``, stays). Returns how many sessions ended. A wrong current password
    is audited as a denial; errors name ``current_password``, ``new_password`` or ``confirm_password``."""
    user = await User.select(User.login, User.password_hash).where(User.id == user_id).first()
    if user is None:
        raise NotFound(N_("user %(id)s not found") % {"id": user_id})
    # argon2 takes a while on purpose: off the event loop
    if not await asyncio.to_thread(verify, user["password_hash"], current):
        await audit.record("denied", model="core.user", record_id=user_id,
                           detail="password change refused: wrong current password")
        raise ValidationError({"current_password": N_("The current password is wrong.")})
    if confirm is not None and confirm != new:
        raise ValidationError({"confirm_password": N_("The two new passwords differ.")})
    if new == current:
        raise ValidationError({"new_password": N_("The new password must differ from the current one.")})
    try:
        check_policy(new, login=user["login"])
    except ValidationError as exc:
        raise ValidationError({"new_password": exc.fields.get("password", exc.message)}) from None
    hashed = await asyncio.to_thread(hash_password, new)
    async with db.atomic():
        await User.update({User.password_hash: hashed}).where(User.id == user_id)
        others = (Session.user == user_id) & Session.revoked_at.is_null()
        if keep_session is not None:
            others &= Session.id != keep_session
        ended = await Session.update({Session.revoked_at: dt.datetime.now(dt.UTC)}).where(others).returning(
            Session.id)
        await audit.record("password_change", model="core.user", record_id=user_id,
                           detail=f"by the user; {len(ended)} other session(s) ended")
    return len(ended)


def check_roles(roles: list[str] | tuple[str, ...], known: set[str]) -> None:
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValidationError({"roles": N_("unknown role(s): %(roles)s") % {"roles": ", ".join(unknown)}})


ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{1,59}$")


async def custom_roles() -> list[dict[str, Any]]:
    rows = await CustomRole.select().order_by(CustomRole.name)
    for row in rows:
        row["implies"] = json.loads(row["implies"]) if isinstance(row["implies"], str) else list(row["implies"])
    return rows


async def save_role(name: str, label: str, implies: list[str], *, declared: set[str],
                    role_id: int | None = None) -> int:
    """Create (or, with ``role_id``, update) a custom role: a named bundle of declared or custom roles."""
    name = name.strip()
    if role_id is None and not ROLE_NAME.match(name):
        raise ValidationError({"name": N_("use 2-60 lowercase letters, digits or _ , starting with a letter")})
    if role_id is None and name in declared:
        raise ValidationError({"name": N_("%(name)s is a role declared by the kernel or an addon") % {
            "name": repr(name)}})
    existing = {r["name"]: r for r in await custom_roles()}
    known = declared | set(existing)
    if not implies:
        raise ValidationError({"implies": N_("choose at least one role to bundle")})
    check_roles(implies, known)
    async with db.atomic():
        if role_id is None:
            if name in existing:
                raise Conflict(N_("a role named %(name)s exists already") % {"name": repr(name)})
            rows = await CustomRole.insert(CustomRole(name=name, label=label.strip() or name,
                                                      implies=sorted(set(implies)))).returning(CustomRole.id)
            role_id = int(rows[0]["id"])
            await audit.record("create", model="core.role", record_id=role_id,
                               changes={"name": [None, name], "implies": [None, sorted(set(implies))]})
            return role_id
        before = await CustomRole.select().where(CustomRole.id == role_id).first()
        if before is None:
            raise NotFound(N_("role %(id)s not found") % {"id": role_id})
        if before["name"] in implies:
            raise ValidationError({"implies": N_("a role cannot imply itself")})
        old = json.loads(before["implies"]) if isinstance(before["implies"], str) else before["implies"]
        await CustomRole.update({CustomRole.label: label.strip() or before["label"],
                                 CustomRole.implies: sorted(set(implies))}).where(CustomRole.id == role_id)
        await audit.record("update", model="core.role", record_id=role_id,
                           changes={"implies": [sorted(old), sorted(set(implies))]})
        return role_id


async def delete_role(role_id: int) -> None:
    async with db.atomic():
        row = await CustomRole.select(CustomRole.name).where(CustomRole.id == role_id).first()
        if row is None:
            raise NotFound(N_("role %(id)s not found") % {"id": role_id})
        await UserRole.delete().where(UserRole.role == row["name"])
        await CustomRole.delete().where(CustomRole.id == role_id)
        await audit.record("delete", model="core.role", record_id=role_id, changes={"name": [row["name"], None]})


async def update_team(team_id: int, *, leader: int | None, members: list[int]) -> None:
    async with db.atomic():
        if not await Team.exists().where(Team.id == team_id):
            raise NotFound(N_("team %(id)s not found") % {"id": team_id})
        before = await Team.select(Team.leader).where(Team.id == team_id).first()
        old = sorted(r["user"] for r in await TeamMember.select(TeamMember.user).where(TeamMember.team == team_id))
        await Team.update({Team.leader: leader}).where(Team.id == team_id)
        await TeamMember.delete().where(TeamMember.team == team_id)
        for member in sorted(set(members)):
            await TeamMember.insert(TeamMember(team=team_id, user=member))
        await audit.record("update", model="core.team", record_id=team_id,
                           changes=audit.diff({"leader": before["leader"] if before else None, "members": old},
                                              {"leader": leader, "members": sorted(set(members))}))
