"""Request bodies: one size limit for every request, file parts and chunked bodies included (413, never a CSRF
failure), and form bodies the parser refuses are a 400 naming the problem (never a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from core.testing import csrf_of

MB = 1024 * 1024


async def _client(crm_boot: Any, **settings: Any) -> httpx.AsyncClient:
    from core.app import create_app

    runtime = await crm_boot()
    runtime.settings = runtime.settings.with_(**settings)
    app = create_app(runtime=runtime, run_jobs=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def _chunks(total: int, prefix: bytes = b"") -> AsyncIterator[bytes]:
    """A body without Content-Length (chunked): only counting what arrives can stop it."""
    yield prefix
    for _ in range(total // MB):
        yield b"x" * MB


async def test_multipart_without_boundary_is_a_400(crm_boot: Any) -> None:
    async with await _client(crm_boot) as client:
        csrf = csrf_of((await client.get("/login")).text)
        for accept, kind in (("text/html", "text/html"), ("application/json", "application/json")):
            response = await client.post("/login", content=b"login=amy", headers={
                "Content-Type": "multipart/form-data", "Accept": accept})
            assert response.status_code == 400, response.text[:300]
            assert "Missing boundary" in response.text and response.headers["content-type"].startswith(kind)
        # the CSRF token in a header: the endpoint parses the body itself, and still answers 400
        response = await client.post("/login", content=b"login=amy", headers={
            "Content-Type": "multipart/form-data", "X-CSRF-Token": csrf})
        assert response.status_code == 400 and "boundary" in response.text


async def test_bodies_past_the_limit_are_413_wherever_they_are_read(crm_boot: Any) -> None:
    from core.security.models import AuditLog

    async with await _client(crm_boot, max_request_mb=1) as client:
        csrf = csrf_of((await client.get("/login")).text)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        declared = await client.post("/login", content=b"x" * (2 * MB), headers=form)  # Content-Length
        chunked = await client.post("/login", content=_chunks(2 * MB, b"csrf_token=" + csrf.encode() + b"&x="),
                                    headers=form)  # read by the middleware for its CSRF field
        in_endpoint = await client.post("/login", content=_chunks(2 * MB, b"login=amy&x="),
                                        headers={**form, "X-CSRF-Token": csrf, "Accept": "application/json"})
        for response in (declared, chunked, in_endpoint):
            assert response.status_code == 413, response.text[:300]
            assert "larger than the 1 MB" in response.text
        assert in_endpoint.json()["error"]["code"] == "too_large"
    async with await _client(crm_boot) as client:  # 64 MB for the request; a plain (not file) field: 1 MB
        csrf = csrf_of((await client.get("/login")).text)
        field = await client.post("/login", data={"csrf_token": csrf, "login": "amy"},
                                  files={"note": (None, "y" * (MB + 10))})
        assert field.status_code == 413 and "form field is larger than the 1024 KB" in field.text
    assert await AuditLog.count().where(AuditLog.action == "csrf_failed") == 0
