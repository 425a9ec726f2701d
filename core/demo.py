"""Demo setup: install every present addon with demo data, and one demo user per declared role."""

from __future__ import annotations

from dataclasses import dataclass

from core import data, lifecycle
from core.discovery import discover
from core.security.models import User
from core.security.policy import compile_policy
from core.security.users import create_user

DEMO_PASSWORD = "Demo-Pass-2026!"


@dataclass(frozen=True)
class DemoUser:
    login: str
    role: str


async def setup() -> tuple[list[str], list[DemoUser]]:
    """Idempotent: a second run installs nothing new and creates no second user."""
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
    already = set(await lifecycle.installed())
    installed = await lifecycle.install(order, found, demo=True)
    return [n for n in installed if n not in already], demo_users
