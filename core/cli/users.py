"""``crm users create``: the first administrator, and scripted user creation."""

from __future__ import annotations

import os

import click

from core.cli.common import handle_errors, run, settings
from core.runtime import boot


@click.group("users")
def users_group() -> None:
    """Manage users."""


@users_group.command("create")
@click.argument("login")
@click.option("--name", default="")
@click.option("--email", default="")
@click.option("--role", "roles", multiple=True, help="Role to grant (repeatable), e.g. admin")
@click.option("--password-env", default="CRM_NEW_PASSWORD", show_default=True,
              help="Read the password from this environment variable (prompted if unset)")
@handle_errors
def create(login: str, name: str, email: str, roles: tuple[str, ...], password_env: str) -> None:
    """Create user LOGIN."""
    password = os.environ.get(password_env) or click.prompt("Password", hide_input=True,
                                                            confirmation_prompt=True)

    async def go() -> int:
        from core.security.policy import compile_policy
        from core.security.users import create_user

        rt = await boot(settings())
        known = set(compile_policy(rt.addons).roles)
        return await create_user(login, name, password, roles=roles, email=email, known_roles=known)

    click.echo(f"created user {login} (id {run(go())})")
