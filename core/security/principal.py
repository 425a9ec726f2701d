"""Who is asking: the user, their effective roles and the people whose records their scopes reach."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.security.models import CustomRole, Team, TeamMember, User, UserRole


@dataclass(frozen=True)
class Principal:
    user_id: int
    login: str
    name: str
    language: str
    roles: frozenset[str]
    team_ids: frozenset[int] = frozenset()
    teammate_ids: frozenset[int] = frozenset()
    subordinate_ids: frozenset[int] = frozenset()
    via_token: bool = False
    #: an IANA name, ``""`` for the site's default (``core.formatting.current_timezone`` resolves it)
    timezone: str = ""

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


ANONYMOUS_ROLES: frozenset[str] = frozenset()
MAX_TEAM_DEPTH = 10


async def custom_implied() -> dict[str, tuple[str, ...]]:
    """Custom roles (``core_role``) as name → implied roles; read per request so every worker agrees."""
    out: dict[str, tuple[str, ...]] = {}
    for row in await CustomRole.select(CustomRole.name, CustomRole.implies):
        implies = row["implies"]
        implies = json.loads(implies) if isinstance(implies, str) else implies
        out[row["name"]] = tuple(str(r) for r in implies or ())
    return out


async def load(user_id: int, *, roles_subset: frozenset[str] | None = None,
               via_token: bool = False, implied: dict[str, tuple[str, ...]] | None = None) -> Principal | None:
    """Build the principal of an active user (None when missing or deactivated).

    ``roles_subset`` (an API token's scope) narrows the effective roles: the result is the intersection of
    what the user holds and what the token names, both closed over "implies" — never more than the user has.
    """
    user = await User.select(User.id, User.login, User.name, User.language, User.timezone, User.is_active).where(
        User.id == user_id).first()
    if user is None or not user["is_active"]:
        return None
    relation = {**(implied or {}), **await custom_implied()}
    direct = {r["role"] for r in await UserRole.select(UserRole.role).where(UserRole.user == user_id)}
    roles = expand(direct, relation)
    if roles_subset is not None:
        roles &= expand(set(roles_subset), relation)
    teams = {r["team"] for r in await TeamMember.select(TeamMember.team).where(TeamMember.user == user_id)}
    led = {r["id"] for r in await Team.select(Team.id).where(Team.leader == user_id)}
    all_teams = teams | led
    mates: set[int] = set()
    if all_teams:
        mates = {r["user"] for r in await TeamMember.select(TeamMember.user).where(
            TeamMember.team.is_in(list(all_teams)))}
        mates |= {r["leader"] for r in await Team.select(Team.leader).where(
            Team.id.is_in(list(all_teams))) if r["leader"] is not None}
    return Principal(user_id=user_id, login=user["login"], name=user["name"], language=user["language"],
                     roles=frozenset(roles), team_ids=frozenset(all_teams),
                     teammate_ids=frozenset(mates | {user_id}),
                     subordinate_ids=frozenset(await subordinates(user_id, led)), via_token=via_token,
                     timezone=user["timezone"])


async def subordinates(user_id: int, led: set[int]) -> set[int]:
    """The user and the members of the teams they lead, and of the teams those members lead, and so on."""
    out = {user_id}
    frontier = set(led)
    seen_teams: set[int] = set()
    for _ in range(MAX_TEAM_DEPTH):
        frontier -= seen_teams
        if not frontier:
            break
        seen_teams |= frontier
        members = {r["user"] for r in await TeamMember.select(TeamMember.user).where(
            TeamMember.team.is_in(list(frontier)))} - out
        out |= members
        frontier = {r["id"] for r in await Team.select(Team.id).where(Team.leader.is_in(list(members)))} \
            if members else set()
    return out


def expand(roles: set[str], implied: dict[str, tuple[str, ...]]) -> set[str]:
    """Close ``roles`` over the "implies" relation (a role grants every right of the roles it implies)."""
    out = set(roles)
    frontier = list(roles)
    while frontier:
        for other in implied.get(frontier.pop(), ()):
            if other not in out:
                out.add(other)
                frontier.append(other)
    return out
