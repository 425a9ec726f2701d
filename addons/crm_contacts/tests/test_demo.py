"""The demo (issue 12): demo users in teams, so the sales manager sees the team's people and the rep opens the
duplicates of their own; `crm demo` says how to point `crm` at its database; `crm --help` lists addon commands."""

from __future__ import annotations

import asyncio
from typing import Any

from core.demo import DemoTeam, DemoUser, demo_teams, ensure_teams
from core.testing import login_client, make_user


def test_teams_follow_the_manager_roles() -> None:
    users = [DemoUser(r, r) for r in ("admin", "sales_manager", "sales_rep", "service_agent", "service_manager")]
    assert demo_teams(users) == [DemoTeam("Demo sales team", "sales_manager", ("sales_rep",)),
                                 DemoTeam("Demo service team", "service_manager", ("service_agent",))]


async def test_manager_sees_the_team_and_the_rep_opens_duplicates(crm_client: Any, found: Any) -> None:
    from crm_contacts.models import DuplicateGroup, Person
    from crm_contacts.setup import install

    from core import data

    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)
    await make_user("sales_manager", "sales_manager")
    rep = await make_user("sales_rep", "sales_rep")
    teams = demo_teams([DemoUser("sales_manager", "sales_manager"), DemoUser("sales_rep", "sales_rep")])
    await ensure_teams(teams)
    await ensure_teams(teams)  # idempotent, like the demo
    for name in ("Zhao Lei", "ZHAO LEI"):
        await Person.insert(Person(name=name, owner=rep, phone="+8613800138000", search_text=name.lower()))
    await install()  # crm_contacts' on_install: no demo people, nothing scanned
    assert await DuplicateGroup.count() == 0
    await data.bind("crm_contacts", "demo_person_0", Person, 1)  # as the demo's people are
    await install()  # the demo's people are scanned at once
    assert await DuplicateGroup.count() == 1

    await login_client(client, "sales_rep")
    page = await client.get("/contacts/duplicates")
    assert page.status_code == 200 and page.text.count('class="card group"') == 1
    assert "/contacts/merge?ids=" not in page.text  # a rep opens the records; a manager merges
    client.cookies.clear()
    await login_client(client, "sales_manager")
    people = await client.get("/contacts/people")
    assert "Zhao Lei" in people.text and "ZHAO LEI" in people.text  # the rep's people, through the team
    assert "/contacts/merge?ids=" in (await client.get("/contacts/duplicates")).text


async def test_cli_help_lists_addon_commands_and_demo_prints_the_export(crm_boot: Any, crm_db_url: str,
                                                                      tmp_path: Any, monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from core import demo
    from core.cli import main as cli

    await crm_boot("crm_contacts")
    monkeypatch.setenv("CRM_DATABASE_URL", crm_db_url)
    monkeypatch.setenv("CRM_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(cli.main, "_found", None)  # what an earlier command of this process found
    helped = await asyncio.to_thread(CliRunner().invoke, cli.main, ["--help"], catch_exceptions=False)
    assert helped.exit_code == 0 and "contacts" in helped.output and "Customer data" in helped.output

    async def quick_setup() -> Any:  # the full demo (every addon) is covered by tests/core/test_backup.py
        users = [DemoUser("sales_manager", "sales_manager"), DemoUser("sales_rep", "sales_rep")]
        return [], users, demo_teams(users)

    monkeypatch.setattr(demo, "setup", quick_setup)
    shown = await asyncio.to_thread(CliRunner().invoke, cli.main, ["demo", "--no-serve"], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert f"export CRM_DATABASE_URL={crm_db_url}" in shown.output
    assert "team 'Demo sales team': led by sales_manager, members sales_rep" in shown.output
