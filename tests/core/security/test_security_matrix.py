"""The role × model × field matrix over crm_testbase's notes (plus crm_sectest's export, PDF, count, form).

For every role the visible set is computed by hand from the world in conftest.py; HTML list, HTML detail,
count, API list, API detail, CSV export and PDF must all agree with it, with the same field treatment.
"""

from __future__ import annotations

import csv
import io
import subprocess

from security_helpers import NOTES, audit_rows, list_titles, sign_in

LIVE = ["welcome", *[k for k, v in NOTES.items() if not v[3]]]
#: login → (visible note keys, phone treatment, internal treatment, may export)
EXPECTED: dict[str, tuple[set[str] | None, str, str, bool]] = {
    "amy": ({"amy1"}, "masked", "hidden", True),
    "bob": ({"bob1"}, "masked", "hidden", True),
    "dan": ({"dan1"}, "masked", "hidden", True),
    "mia": ({"amy1", "bob1", "mia1", "lee1"}, "masked", "shown", True),         # team of T1, leader included
    "lee": ({"lee1", "amy1", "bob1", "mia1", "dan1"}, "masked", "hidden", True),  # subordinates, nested via bob
    "ola": ({"ola1", "carl1"}, "masked", "hidden", True),                       # own OR subordinates
    "ro": (set(LIVE), "masked", "hidden", False),
    "root": (set(LIVE), "plain", "shown", True),
    "aud": (None, "", "", False),                                               # no grant on notes at all
}


def _phone(world_key: str, treatment: str) -> str | None:
    raw = "13812345678" if world_key == "welcome" else NOTES[world_key][1]
    return raw if treatment == "plain" else raw[:3] + "****" + raw[-4:]


def _raw(key: str) -> tuple[str, str]:
    return ("13812345678", "") if key == "welcome" else (NOTES[key][1], NOTES[key][2])


async def test_read_matrix(world_client) -> None:
    client, world = world_client
    all_keys = ["welcome", *NOTES]
    by_id = {world.notes[k]: k for k in all_keys}
    for login, (visible, phone, internal, may_export) in EXPECTED.items():
        await sign_in(client, login)
        html = await client.get("/notes/")
        api = await client.get("/api/testbase/notes", params={"limit": 200})
        count = await client.get("/sectest/count")
        export = await client.get("/sectest/export.csv")
        if visible is None:
            assert html.status_code == 403 and api.status_code == 403 and count.status_code == 403, login
            assert export.status_code == 403, login
            for key in all_keys:
                assert (await client.get(f"/api/testbase/notes/{world.notes[key]}")).status_code == 403
            continue
        want = {world.notes[k] for k in visible}
        # list (HTML), list (API), count, detail (HTML and API) agree
        assert html.status_code == 200, (login, html.text[:200])
        assert set(list_titles(html.text)) == {("Welcome note" if k == "welcome" else f"note {k}") for k in visible}
        assert api.status_code == 200 and api.json()["next"] is None
        items = api.json()["items"]
        assert {i["id"] for i in items} == want, login
        assert count.json()["count"] == len(want) == len(items), login
        for key in all_keys:
            status = 200 if key in visible else 404
            assert (await client.get(f"/notes/{world.notes[key]}")).status_code == status, (login, key)
            detail = await client.get(f"/api/testbase/notes/{world.notes[key]}")
            assert detail.status_code == status, (login, key, detail.text)
            if status == 200:
                assert detail.json() == next(i for i in items if i["id"] == world.notes[key])
        # field rules, identically in API items, the HTML list and the export
        for item in items:
            key = by_id[item["id"]]
            raw_phone, raw_internal = _raw(key)
            assert item["phone"] == _phone(key, phone), (login, key, item)
            assert ("internal" in item) == (internal == "shown"), (login, item)
            if internal == "shown":
                assert item["internal"] == raw_internal
            if phone == "masked":
                assert raw_phone not in html.text and raw_phone not in api.text
            if internal == "hidden" and raw_internal:
                assert raw_internal not in html.text and raw_internal not in api.text
        if not may_export:
            assert export.status_code == 403, login
            continue
        assert export.status_code == 200, (login, export.text[:200])
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert {int(r["id"]) for r in rows} == want, login
        assert ("internal" in rows[0]) == (internal == "shown"), login
        assert {r["phone"] for r in rows} == {i["phone"] for i in items}
    exports = await audit_rows(action="export", model="crm_testbase.note")
    assert [r["user_login"] for r in exports] == ["amy", "bob", "dan", "mia", "lee", "ola", "root"]
    denied = await audit_rows(action="denied", user_login="aud")
    assert len(denied) >= 4 and {r["model"] for r in denied} == {"crm_testbase.note"}


async def test_pdf_obeys_scope_and_field_rules(world_client, tmp_path) -> None:
    client, world = world_client
    cases = [("amy", "amy1", "bob1", "masked", False), ("mia", "bob1", "carl1", "masked", True),
             ("root", "carl1", None, "plain", True)]
    for login, mine, other, phone, shows_internal in cases:
        await sign_in(client, login)
        pdf = await client.get(f"/sectest/notes/{world.notes[mine]}.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), login
        path = tmp_path / f"{login}.pdf"
        path.write_bytes(pdf.content)
        text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
        raw_phone, raw_internal = NOTES[mine][1], NOTES[mine][2]
        assert f"note {mine}" in text
        assert f"phone={_phone(mine, phone)}" in text, (login, text)
        assert (raw_internal in text) == shows_internal, (login, text)
        if phone == "masked":
            assert raw_phone not in text
        if other:
            assert (await client.get(f"/sectest/notes/{world.notes[other]}.pdf")).status_code == 404


async def test_write_matrix(world_client) -> None:
    """Who may change what: allowed writes succeed, the rest are refused with 403/404/422 naming the field."""
    client, world = world_client
    n = world.notes

    async def patch(csrf: str, key: str, body: dict) -> tuple[int, dict]:
        current = await client.get(f"/api/testbase/notes/{n[key]}")
        version = current.json().get("version", 1) if current.status_code == 200 else 1
        r = await client.patch(f"/api/testbase/notes/{n[key]}", json={**body, "version": version},
                               headers={"X-CSRF-Token": csrf})
        return r.status_code, r.json()

    # login → [(note, body, status, field named in the error)]
    cases = {
        "amy": [("amy1", {"title": "amy edit"}, 200, None), ("amy1", {"phone": "1"}, 403, "phone"),
                ("amy1", {"internal": "x"}, 403, "internal"), ("amy1", {"owner": world.users["bob"]}, 422, "owner"),
                ("amy1", {"is_archived": True, "title": "t"}, 422, "is_archived"),
                ("bob1", {"title": "idor"}, 404, None), ("amy_old", {"title": "archived"}, 404, None)],
        "mia": [("bob1", {"title": "mia edit"}, 200, None), ("bob1", {"internal": "x"}, 403, "internal"),
                ("bob1", {"phone": "1"}, 403, "phone"), ("carl1", {"title": "idor"}, 404, None)],
        "lee": [("amy1", {"title": "lead edit"}, 403, None)],        # may read, may not update
        "ro": [("amy1", {"title": "ro edit"}, 403, None)],
        "aud": [("amy1", {"title": "aud edit"}, 403, None)],
        "root": [("carl1", {"phone": "13900000000", "internal": "root"}, 200, None),
                 ("carl1", {"owner": 1}, 422, "owner")],
    }
    for login, attempts in cases.items():
        csrf = await sign_in(client, login)
        for key, body, status, field in attempts:
            got, payload = await patch(csrf, key, body)
            assert got == status, (login, key, body, payload)
            if field:
                assert field in payload["error"]["fields"], (login, payload)
                assert field in payload["error"]["message"]
    from crm_testbase.models import Note

    rows = {r["id"]: r for r in await Note.select()}
    assert rows[n["amy1"]]["title"] == "amy edit" and rows[n["amy1"]]["phone"] == NOTES["amy1"][1]
    assert rows[n["bob1"]]["title"] == "mia edit" and rows[n["bob1"]]["internal"] == "bob-internal"
    assert rows[n["carl1"]]["phone"] == "13900000000" and rows[n["carl1"]]["title"] == "note carl1"
    assert rows[n["amy_old"]]["title"] == "note amy_old"
    updates = await audit_rows(action="update", model="crm_testbase.note")
    assert [(r["user_login"], r["changes"]) for r in updates][0] == ("amy", {"title": ["note amy1", "amy edit"]})
    assert len(updates) == 3
    denials = await audit_rows(action="denied", model="crm_testbase.note")
    assert {r["user_login"] for r in denials} >= {"amy", "mia", "lee", "ro", "aud", "root"}

    # create and delete: owner is forced to the creator; tb_user may not delete; IDOR delete is 404
    csrf = await sign_in(client, "amy")
    made = await client.post("/api/testbase/notes", json={"title": "new"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201 and made.json()["owner"] == world.users["amy"]
    assert "internal" not in made.json()
    forged_owner = await client.post("/api/testbase/notes", json={"title": "x", "owner": world.users["bob"]},
                                     headers={"X-CSRF-Token": csrf})
    assert forged_owner.status_code == 422 and "owner" in forged_owner.json()["error"]["fields"]
    assert (await client.delete(f"/api/testbase/notes/{n['amy1']}", headers={"X-CSRF-Token": csrf})).status_code == 403
    csrf = await sign_in(client, "mia")
    assert (await client.delete(f"/api/testbase/notes/{n['carl1']}", headers={"X-CSRF-Token": csrf})).status_code == 404
    assert (await client.delete(f"/api/testbase/notes/{n['amy1']}", headers={"X-CSRF-Token": csrf})).status_code == 204
    assert [r["record_id"] for r in await audit_rows(action="delete", user_login="mia")] == [str(n["amy1"])]
    csrf = await sign_in(client, "ro")
    assert (await client.post("/api/testbase/notes", json={"title": "x"},
                              headers={"X-CSRF-Token": csrf})).status_code == 403


async def test_html_form_writes_obey_the_same_rules(world_client) -> None:
    client, world = world_client
    n = world.notes
    csrf = await sign_in(client, "amy")
    ok = await client.post(f"/sectest/notes/{n['amy1']}", data={"csrf_token": csrf, "title": "via form"})
    assert ok.status_code == 303
    no_csrf = await client.post(f"/sectest/notes/{n['amy1']}", data={"title": "no token"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    idor = await client.post(f"/sectest/notes/{n['bob1']}", data={"csrf_token": csrf, "title": "idor"})
    assert idor.status_code == 404
    mass = await client.post(f"/sectest/notes/{n['amy1']}", data={"csrf_token": csrf, "title": "x", "owner": "1"})
    assert mass.status_code == 422 and "owner" in mass.text
    hidden = await client.post(f"/sectest/notes/{n['amy1']}", data={"csrf_token": csrf, "internal": "x"})
    assert hidden.status_code == 403 and "internal" in hidden.text
    from crm_testbase.models import Note

    rows = {r["id"]: r for r in await Note.select()}
    assert rows[n["amy1"]]["title"] == "via form" and rows[n["bob1"]]["title"] == "note bob1"
    assert rows[n["amy1"]]["owner"] == world.users["amy"] and rows[n["amy1"]]["internal"] == "amy-internal"
    assert len(await audit_rows(action="csrf_failed", user_login="amy")) == 1
    assert any("owner" in r["detail"] for r in await audit_rows(action="denied", user_login="amy"))


async def test_reveal_is_a_right_and_is_audited(world_client) -> None:
    client, world = world_client
    n = world.notes
    csrf = await sign_in(client, "mia")
    shown = await client.post(f"/api/testbase/notes/{n['bob1']}/reveal/phone", headers={"X-CSRF-Token": csrf})
    assert shown.status_code == 200 and shown.json() == {"field": "phone", "value": NOTES["bob1"][1]}
    outside = await client.post(f"/api/testbase/notes/{n['carl1']}/reveal/phone", headers={"X-CSRF-Token": csrf})
    assert outside.status_code == 404
    via_page = await client.post(f"/sectest/notes/{n['amy1']}/reveal/phone", data={"csrf_token": csrf})
    assert via_page.json() == {"value": NOTES["amy1"][1]}
    csrf = await sign_in(client, "amy")
    refused = await client.post(f"/api/testbase/notes/{n['amy1']}/reveal/phone", headers={"X-CSRF-Token": csrf})
    error = refused.json()["error"]
    assert refused.status_code == 403 and error["fields"] == {"phone": error["message"]}
    hidden = await client.post(f"/api/testbase/notes/{n['amy1']}/reveal/internal", headers={"X-CSRF-Token": csrf})
    assert hidden.status_code == 403
    reveals = await audit_rows(action="reveal")
    assert [(r["user_login"], r["record_id"], r["detail"]) for r in reveals] == [
        ("mia", str(n["bob1"]), "phone"), ("mia", str(n["amy1"]), "phone")]
    assert {r["detail"] for r in await audit_rows(action="denied", user_login="amy")} == {
        "reveal phone", "reveal internal"}
