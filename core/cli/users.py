"""``crm users create``: the first administrator, and scripted user creation; ``crm users deactivate``: a
leaver's records handed over."""

from __future__ import annotations

import os
from typing import Any

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


@users_group.command("deactivate")
@click.argument("login")
@click.option("--to", "to_login", default=None, metavar="LOGIN2", help="Hand every record over to this user")
@click.option("--team", "team_name", default=None, metavar="NAME", help="Spread the records over this team")
@click.option("--strategy", type=click.Choice(["balanced", "round_robin"]), default="balanced", show_default=True,
              help="How to spread over a team")
@click.option("--keep", is_flag=True, help="Leave the records with the deactivated user")
@click.option("--dry-run", is_flag=True, help="Only show who would get what")
@handle_errors
def deactivate(login: str, to_login: str | None, team_name: str | None, strategy: str, keep: bool,
               dry_run: bool) -> None:
    """Deactivate user LOGIN and hand their records over (--to LOGIN2 | --team NAME | --keep)."""
    if sum((to_login is not None, team_name is not None, keep)) != 1:
        raise click.UsageError("choose exactly one of --to LOGIN2, --team NAME or --keep")

    async def go() -> dict[str, Any]:
        from core import jobs, outbox
        from core.errors import NotFound
        from core.models import Outbox
        from core.security import handover
        from core.security.models import Team, User

        async def user_id(name: str) -> int:
            row = await User.select(User.id).where(User.login == name).first()
            if row is None:
                raise NotFound(f"no user with login {name!r}")
            return int(row["id"])

        await boot(settings())
        team = None
        if team_name is not None:
            found = await Team.select(Team.id).where(Team.name == team_name).first()
            if found is None:
                raise NotFound(f"no team named {team_name!r}")
            team = int(found["id"])
        plan = handover.Plan(await user_id(login), "keep" if keep else "team" if team else "user",
                             to_user=await user_id(to_login) if to_login else None, team=team, strategy=strategy)
        if dry_run:
            return await handover.preview(plan)
        key = await handover.start(plan)
        job = await Outbox.select(Outbox.id).where(Outbox.dedup_key == f"{handover.ACTOR}:{key}").first()
        if job is not None:  # run it here, now: the command reports what it did
            try:
                await outbox.run_job(jobs.spec(handover.ACTOR), int(job["id"]))
            except Exception as exc:  # noqa: BLE001 - the row stays pending: the workers' sweep retries it
                click.echo(f"the hand-over did not finish ({type(exc).__name__}: {exc}); workers retry it", err=True)
        return await handover.report(plan.user_id, key)

    result = run(go())
    if dry_run:
        click.echo(f"dry run: {result['total']} record(s) would change owner")
        for r in result["receivers"]:
            click.echo(f"  {r['login']:<24} owns {r['load']:<6} gets {r['gets']}")
        return
    click.echo(f"deactivated {login}; hand-over {result['key']}: {result['state']}, "
               f"{result['total']} record(s) moved")
    for k in result["kinds"]:
        click.echo(f"  {k['label']:<24} {k['count']}")
    for r in result["receivers"]:
        click.echo(f"  → {r['login']:<22} {r['total']}")
    for k in result["remaining"]:
        click.echo(f"  still owned: {k['label']} {k['count']}")
    if result["state"] == "failed":
        raise SystemExit(f"error: {result['error']}")
