"""The demo (issue 12): demo users in teams, so the sales manager sees the team's people and the rep opens the
duplicates of their own; the merge page in words; `crm demo` says how to point `crm` at its database; `crm --help`
lists addon commands."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from core.demo import DemoTeam, DemoUser, demo_teams, ensure_teams
from core.testing import login_client, make_user


def test_teams_follow_the_manager_roles() -> None:
    users = [DemoUser(r, r) for r in ("admin", "sales_manager", "sales_rep", "service_agent", "service_manager")]
    assert demo_teams(users) == [DemoTeam("Demo sales team", "sales_manager", ("sales_rep",)),
                                 DemoTeam("Demo service team", "service_manager", ("service_agent",))]


async def test_manager_sees_the_team_rep_opens_duplicates_merge_page_in_words(crm_client: Any, found: Any) -> None:
    from crm_contacts.models import DuplicateGroup, Organization, Person
    from crm_contacts.setup import install

    from core import data

    client = await crm_client("crm_contacts", "crm_contacts_probe", found=found)
    mgr = await make_user("sales_manager", "sales_manager")
    rep = await make_user("sales_rep", "sales_rep")
    outsider = await make_user("outsider", "sales_rep")
    teams = demo_teams([DemoUser("sales_manager", "sales_manager"), DemoUser("sales_rep", "sales_rep")])
    await ensure_teams(teams)
    await ensure_teams(teams)  # idempotent, like the demo
    orgs = [Organization(name="Acme Trading", owner=mgr, search_text="acme trading"),
            Organization(name="Secret Holdings", owner=outsider, search_text="secret holdings")]
    for org in orgs:
        await org.save()
    for name, org in zip(("Zhao Lei", "ZHAO LEI"), orgs, strict=True):
        await Person.insert(Person(name=name, owner=rep, phone="+8613800138000", search_text=name.lower(),
                                   organization=org.id, stage="customer"))
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
    assert "/contacts/merge?ids=1,2" in (await client.get("/contacts/duplicates")).text
    # the merge page in words: columns by the records' names, organizations, owners and stages by name or
    # label, never an id; an organization the manager may not read is not named
    text = (await client.get("/contacts/merge?ids=1,2")).text
    assert 'Zhao Lei <small class="muted">#1</small>' in text and 'ZHAO LEI <small class="muted">#2</small>' in text
    org_row = re.search(r'<tr data-field="organization">(.*?)</tr>', text, re.S)
    assert org_row is not None
    assert "Acme Trading" in org_row.group(1) and "(not visible to you)" in org_row.group(1)
    assert "Secret Holdings" not in text and f"> {orgs[0].id}</label>" not in org_row.group(1)
    owner_row = re.search(r'<tr data-field="owner">(.*?)</tr>', text, re.S)
    assert owner_row is not None and "Sales_Rep" in owner_row.group(1)  # the owner's name (make_user: titled)
    assert "Customer" in text  # the stage's label


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
