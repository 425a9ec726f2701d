"""Demo setup: install every present addon with demo data, one demo user per declared role, and teams.

Record rules scope a manager to their team: without teams a demo manager would see only their own records.
So each ``<x>_manager`` role's demo user leads a team "Demo <x> team" whose members are the demo users of the
other ``<x>_*`` roles (``sales_manager`` leads ``sales_rep``; ``service_manager`` leads ``service_agent``),
bound to the external id ``core.team_<x>`` so addons' demo data may name it (``team/ref``)."""

from __future__ import annotations

from dataclasses import dataclass

from core import data, hooks, lifecycle
from core.discovery import discover
from core.hooks import DemoLogin
from core.security.models import User
from core.security.policy import compile_policy
from core.security.users import create_user

DEMO_PASSWORD = "Demo-Pass-2026!"


@dataclass(frozen=True)
class DemoUser:
    login: str
    role: str


@dataclass(frozen=True)
class DemoTeam:
    name: str
    leader: str
    members: tuple[str, ...]


def demo_teams(users: list[DemoUser]) -> list[DemoTeam]:
    """The teams of the demo users: one per ``<x>_manager`` role with the other ``<x>_*`` roles' users."""
    out: list[DemoTeam] = []
    for lead in users:
        prefix, _, kind = lead.role.rpartition("_")
        if kind != "manager" or not prefix:
            continue
        members = tuple(u.login for u in users if u.role.startswith(prefix + "_") and u is not lead)
        if members:
            out.append(DemoTeam(f"Demo {prefix.replace('_', ' ')} team", lead.login, members))
    return out


async def ensure_teams(teams: list[DemoTeam]) -> None:
    from core.security.models import Team
    from core.security.users import create_team

    ids = {u["login"]: u["id"] for u in await User.select(User.id, User.login)}
    for team in teams:
        row = await Team.select(Team.id).where(Team.name == team.name).first()
        if row is None:
            team_id = await create_team(team.name, leader=ids[team.leader],
                                        members=[ids[m] for m in (team.leader, *team.members)])
            key = team.name.removeprefix("Demo ").removesuffix(" team").replace(" ", "_")
            await data.bind("core", f"team_{key}", Team, team_id)


async def setup() -> tuple[list[str], list[DemoUser], list[DemoTeam]]:
    """Idempotent: a second run installs nothing new and creates no second user or team."""
    found = discover()
    if found.errors:
        name, error = next(iter(found.errors.items()))
        from core.errors import AddonError

        raise AddonError(name, f"failed to load: {error}")
    await lifecycle.ensure_kernel()
    order = list(found.addons)
    # users first, so addons' demo data can point at them (owner/ref = core.user_<role>)
    policy = compile_policy(found.addons.values())
    demo_users = [DemoUser(login=role, role=role) for role in sorted(policy.roles)]
    for du in demo_users:
        if not await User.exists().where(User.login == du.login):
            # "Demo Finance", not "Finance": a person's name, never mistaken for the role or a menu entry
            user_id = await create_user(du.login, f"Demo {du.role.replace('_', ' ').title()}", DEMO_PASSWORD,
                                        roles=[du.role], email=f"{du.login}@demo.example.com")
            await data.bind("core", f"user_{du.role}", User, user_id)
    teams = demo_teams(demo_users)
    await ensure_teams(teams)
    already = set(await lifecycle.installed())
    installed = await lifecycle.install(order, found, demo=True)
    return [n for n in installed if n not in already], demo_users, teams


async def logins() -> list[DemoLogin]:
    """The demo's sign-ins besides the demo users (a customer portal account…), asked of the booted runtime's
    addons (``crm_demo_logins``)."""
    found: list[DemoLogin] = await hooks.call("crm_demo_logins")
    return found
