"""Who is asking: the user, their effective roles and the people whose records their scopes reach."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from core.security.models import CustomRole, Team, TeamMember, User


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


#: (kind, a, b, c, d, e) rows, all text: the generation, the user, their roles, every custom role, the teams
#: they belong to, the teams they lead, their teammates and (recursively) their subordinates.
_PRINCIPAL_SQL = f"""
WITH RECURSIVE
mine(team) AS (SELECT team FROM core_team_member WHERE "user" = {{}}
    UNION SELECT id FROM core_team WHERE leader = {{}}),
sub(uid, depth) AS (
    SELECT CAST({{}} AS INTEGER), 0
    UNION SELECT m."user", s.depth + 1 FROM sub s JOIN core_team t ON t.leader = s.uid
        JOIN core_team_member m ON m.team = t.id WHERE s.depth < {MAX_TEAM_DEPTH})
SELECT 'g' AS kind, CAST(value AS TEXT) AS a, CAST(NULL AS TEXT) AS b, CAST(NULL AS TEXT) AS c,
       CAST(NULL AS TEXT) AS d, CAST(NULL AS TEXT) AS e FROM core_security_generation WHERE id = 1
UNION ALL SELECT 'u', login, name, language, timezone, CASE WHEN is_active THEN '1' ELSE '0' END
    FROM core_user WHERE id = {{}}
UNION ALL SELECT 'r', role, NULL, NULL, NULL, NULL FROM core_user_role WHERE "user" = {{}}
UNION ALL SELECT 'c', name, CAST(implies AS TEXT), NULL, NULL, NULL FROM core_role
UNION ALL SELECT 't', CAST(team AS TEXT), NULL, NULL, NULL, NULL FROM core_team_member WHERE "user" = {{}}
UNION ALL SELECT 'l', CAST(id AS TEXT), NULL, NULL, NULL, NULL FROM core_team WHERE leader = {{}}
UNION ALL SELECT 'm', CAST("user" AS TEXT), NULL, NULL, NULL, NULL FROM core_team_member
    WHERE team IN (SELECT team FROM mine)
UNION ALL SELECT 'm', CAST(leader AS TEXT), NULL, NULL, NULL, NULL FROM core_team
    WHERE id IN (SELECT team FROM mine) AND leader IS NOT NULL
UNION ALL SELECT 's', CAST(uid AS TEXT), NULL, NULL, NULL, NULL FROM sub
"""


async def load(user_id: int, *, roles_subset: frozenset[str] | None = None,
               via_token: bool = False, implied: dict[str, tuple[str, ...]] | None = None) -> Principal | None:
    """Build the principal of an active user (None when missing or deactivated), in one query.

    ``roles_subset`` (an API token's scope) narrows the effective roles: the result is the intersection of
    what the user holds and what the token names, both closed over "implies" — never more than the user has.
    """
    return (await _load(user_id, roles_subset=roles_subset, via_token=via_token, implied=implied))[1]


async def _load(user_id: int, *, roles_subset: frozenset[str] | None, via_token: bool,
                implied: dict[str, tuple[str, ...]] | None) -> tuple[int, Principal | None]:
    """(security generation read in the same statement, principal)."""
    rows = await User.raw(_PRINCIPAL_SQL, *[int(user_id)] * 7)
    generation, user = -1, None
    direct: set[str] = set()
    relation = dict(implied or {})
    teams: set[int] = set()
    led: set[int] = set()
    mates: set[int] = set()
    subs: set[int] = set()
    for row in rows:
        kind, a = row["kind"], row["a"]
        if kind == "g":
            generation = int(a)
        elif kind == "u":
            user = row
        elif kind == "r":
            direct.add(a)
        elif kind == "c":
            implies = json.loads(row["b"]) if row["b"] else []
            relation[a] = tuple(str(r) for r in implies or ())
        elif kind == "t":
            teams.add(int(a))
        elif kind == "l":
            led.add(int(a))
        elif kind == "m":
            mates.add(int(a))
        elif kind == "s":
            subs.add(int(a))
    if user is None or user["e"] not in ("1", "true", "t"):
        return generation, None
    roles = expand(direct, relation)
    if roles_subset is not None:
        roles &= expand(set(roles_subset), relation)
    return generation, Principal(
        user_id=user_id, login=user["a"], name=user["b"], language=user["c"] or "", roles=frozenset(roles),
        team_ids=frozenset(teams | led), teammate_ids=frozenset(mates | {user_id}),
        subordinate_ids=frozenset(subs | {user_id}), via_token=via_token, timezone=user["d"] or "")


class Cache:
    """Principals of one app (its security middleware holds one; each worker process has its own), valid
    while the security generation — a counter that triggers bump in the same transaction as any change to
    users, roles, custom roles, teams or members — is the one read with the request's token or session."""

    #: how long an entry may serve without being rebuilt even if the generation did not move (a safety net)
    max_age = 60.0
    max_entries = 10_000

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[int, float, Principal | None]] = {}
        self._owner: tuple[Any, Any] = (None, None)  # (engine, implied) the entries were built for

    async def get(self, user_id: int, generation: int, *, roles_subset: frozenset[str] | None = None,
                  via_token: bool = False, implied: dict[str, tuple[str, ...]] | None = None) -> Principal | None:
        from core import db

        engine = db.current()
        if self._owner[0] is not engine or self._owner[1] is not implied:
            self._entries.clear()
            self._owner = (engine, implied)
        key = (user_id, roles_subset, via_token)
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] == generation and generation >= 0 and hit[1] > now:
            return hit[2]
        found, who = await _load(user_id, roles_subset=roles_subset, via_token=via_token, implied=implied)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (found, now + self.max_age, who)
        return who

    def clear(self) -> None:
        self._entries.clear()


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
