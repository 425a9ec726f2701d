"""Who approves a step: the holders of a role, the leaders of the owner's teams, a named user — never the
requester; the administrators when nobody else is left. Resolved when the step begins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core import conditions, i18n
from core.hooks import ApprovableAction
from core.security.access import policy
from core.security.models import Team, TeamMember, User, UserRole


async def active(user_ids: set[int]) -> list[int]:
    if not user_ids:
        return []
    return sorted(int(r["id"]) for r in await User.select(User.id).where(
        User.id.is_in(sorted(user_ids)) & (User.is_active == True)))  # noqa: E712


async def _holders(role: str) -> set[int]:
    """Users holding ``role``, directly or through a role that implies it."""
    from core.security.principal import custom_implied, expand

    relation = {**policy().implied, **await custom_implied()}
    granting = {name for name in {*relation, role} if role in expand({name}, relation)}
    return {int(r["user"]) for r in await UserRole.select(UserRole.user).where(UserRole.role.is_in(sorted(granting)))}


async def _leaders(action: ApprovableAction, values: Mapping[str, Any]) -> set[int]:
    """The leaders of the teams the record's owner belongs to (the record's own team first, when it has one)."""
    owner = conditions.coerce("reference", values.get(action.owner))
    team = conditions.coerce("reference", values.get("team"))
    teams: set[int] = set()
    if owner is not None:
        teams = {int(r["team"]) for r in await TeamMember.select(TeamMember.team).where(TeamMember.user == owner)}
    if team is not None and (team in teams or not teams):
        teams = {team}
    if not teams:
        return set()
    return {int(r["leader"]) for r in await Team.select(Team.leader).where(Team.id.is_in(sorted(teams)))
            if r["leader"] is not None and r["leader"] != owner}


async def approvers(step: Mapping[str, Any], action: ApprovableAction, values: Mapping[str, Any],
                    requester: int | None) -> list[tuple[int, str]]:
    """``(user id, via)`` of who may decide ``step``: never the requester; the administrators when nobody else."""
    kind = step.get("approver")
    found: set[int] = set()
    via = str(kind)
    if kind == "role":
        found, via = await _holders(str(step.get("role"))), f"role:{step.get('role')}"
    elif kind == "team_leader":
        found = await _leaders(action, values)
    elif kind == "user":
        found = {int(step["user"])}
    people = [u for u in await active(found) if u != requester]
    if not people:
        admins = {int(r["user"]) for r in await UserRole.select(UserRole.user).where(UserRole.role == "admin")}
        people, via = [u for u in await active(admins) if u != requester], "admin"
    return [(u, via) for u in people]


async def names(user_ids: Sequence[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    return {int(r["id"]): str(r["name"]) for r in await User.select(User.id, User.name).where(
        User.id.is_in(sorted(set(user_ids))))}


def step_text(step: Mapping[str, Any], people: Mapping[int, str] | None = None) -> str:
    """A step in words, in the reader's language ("Team leader", "Role: Sales manager", "Li Lei")."""
    kind = step.get("approver")
    if kind == "role":
        role = policy().roles.get(str(step.get("role")))
        return i18n.gettext("Role: %(role)s") % {"role": i18n.gettext(role.label) if role else step.get("role")}
    if kind == "team_leader":
        return i18n.gettext("The owner's team leader")
    if kind == "user":
        return (people or {}).get(int(step.get("user") or 0)) or i18n.gettext("User %(id)s") % {"id": step.get("user")}
    return str(kind)
