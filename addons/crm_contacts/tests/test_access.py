"""Record rules and field rules: reps see their own, marketing sees masked values, reveals are audited."""

from __future__ import annotations

from typing import Any

PEOPLE = "/api/contacts/people"


async def test_rep_sees_own_only_and_manager_sees_team(api: Any) -> None:
    from core.security.models import Team, TeamMember

    client, token_for = api
    rep1 = await token_for("rep1", "sales_rep")
    rep2 = await token_for("rep2", "sales_rep")
    p1 = (await client.post(PEOPLE, headers=rep1, json={"name": "Mine"})).json()["id"]
    p2 = (await client.post(PEOPLE, headers=rep2, json={"name": "Theirs"})).json()["id"]
    assert [p["id"] for p in (await client.get(PEOPLE, headers=rep1)).json()["items"]] == [p1]
    assert (await client.get(f"{PEOPLE}/{p2}", headers=rep1)).status_code == 404
    assert (await client.patch(f"{PEOPLE}/{p2}", headers=rep1, json={"version": 1, "name": "x"})).status_code == 404
    assert (await client.delete(f"{PEOPLE}/{p1}", headers=rep1)).status_code == 403  # reps may not delete
    mgr = await token_for("mgr", "sales_manager")
    team = Team(name="East", leader=int(mgr["X-User-Id"]))
    await team.save()
    await TeamMember.insert(TeamMember(team=team.id, user=int(rep1["X-User-Id"])))
    seen = [p["id"] for p in (await client.get(PEOPLE, headers=mgr)).json()["items"]]
    assert seen == [p1]  # rep1 reports to mgr; rep2 does not


async def test_marketing_sees_masked_values_and_cannot_reveal(api: Any) -> None:
    from core.security.models import AuditLog

    client, token_for = api
    admin = await token_for("boss", "admin")
    pid = (await client.post(PEOPLE, headers=admin, json={"name": "Masked Person", "phone": "13812345678",
                                                        "email": "secret.person@example.com"})).json()["id"]
    mkt = await token_for("mkt", "marketing")
    row = (await client.get(f"{PEOPLE}/{pid}", headers=mkt)).json()
    assert row["phone"] == "+86138****5678" and row["email"] == "s***@example.com"
    assert "13812345678" not in str((await client.get(PEOPLE, headers=mkt)).json())
    assert (await client.post(f"{PEOPLE}/{pid}/reveal", headers=mkt, json={"field": "phone"})).status_code == 403
    writes = await client.patch(f"{PEOPLE}/{pid}", headers=mkt, json={"version": 1, "name": "X"})
    assert writes.status_code == 403
    svc = await token_for("svc", "service_agent")
    assert (await client.get(f"{PEOPLE}/{pid}", headers=svc)).json()["phone"] == "+86138****5678"
    shown = await client.post(f"{PEOPLE}/{pid}/reveal", headers=svc, json={"field": "phone"})
    assert shown.json() == {"field": "phone", "value": "+8613812345678"}
    reveals = await AuditLog.select().where((AuditLog.action == "reveal") & (AuditLog.record_id == str(pid)))
    assert [(r["user_login"], r["detail"]) for r in reveals] == [("svc", "phone")]


async def test_import_obeys_create_rights(booted: Any) -> None:
    import pytest
    from crm_contacts.importing import Importer, auto_mapping
    from crm_contacts.models import Person
    from crm_contacts.tabular import read_table

    from core.errors import PermissionDenied

    acc = await booted("mkt", "marketing")
    header, rows = read_table(b"name,phone\nA Person,13800138000\n", "x.csv")
    with pytest.raises(PermissionDenied):
        await Importer(acc, header, rows, auto_mapping(header)).run()
    assert await Person.count() == 0
