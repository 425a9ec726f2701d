"""``/<mount>/public/…`` takes unsafe requests without a CSRF token (signed links, RFC 8058 one-click POSTs), so a
staff session must never reach it: a signed-in user's POST there (as a page elsewhere could make the browser send)
is anonymous, and the session itself is left alone for the user's other pages."""

from __future__ import annotations

from typing import Any

from security_helpers import sign_in

from core.testing import make_user


async def test_a_staff_session_is_anonymous_on_public_paths(crm_client: Any, found: Any) -> None:
    client = await crm_client("crm_sectest", found=found)
    await make_user("amy", "admin")
    csrf = await sign_in(client, "amy")

    # no CSRF token, the session cookie sent: the endpoint sees no user, in request state or context
    for method in ("POST", "GET"):
        response = await client.request(method, "/sectest/public/whoami", data={"x": "1"})
        assert response.status_code == 200, response.text[:300]
        assert response.json() == {"state": None, "context": None, "session": False}
        assert "crm_session" not in response.headers.get("set-cookie", "")  # not logged out either
    # the same session still acts elsewhere, and still needs its token there
    assert (await client.get("/")).status_code == 200
    assert (await client.post("/sectest/notes/1", data={"title": "x"})).status_code == 403
    assert (await client.post("/sectest/notes/1", data={"title": "x", "csrf_token": csrf})).status_code != 403
    # an anonymous caller gets the same answer (the flow mail clients use)
    client.cookies.clear()
    response = await client.post("/sectest/public/whoami", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and response.json()["state"] is None
