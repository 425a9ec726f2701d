"""Global search: one query across every installed addon's search providers, each reading through the
user's :class:`~core.security.access.Access`.

A provider that fails is left out of the answer and logged; it never takes the whole search down.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from piccolo.columns.base import Column
from piccolo.custom_types import Combinable
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core import hooks
from core.db import is_postgres
from core.errors import ValidationError
from core.hooks import SearchHit, SearchProvider
from core.security import audit
from core.security.access import Access

log = logging.getLogger("crm.search")

MIN_LENGTH = 2
MAX_LENGTH = 100
MAX_LIMIT = 20


@dataclass(frozen=True)
class SearchGroup:
    """The hits of one kind of record, in the providers' order."""

    kind: str
    label: str
    hits: tuple[SearchHit, ...]


def contains(column: Column, term: str) -> Combinable:
    """``column`` contains ``term``, case-insensitive on both databases (SQLite's LIKE already is, and
    has no ILIKE); the wildcards ``%`` and ``_`` in ``term`` match only themselves."""
    pattern = "%" + term.replace("\\", "").replace("%", "").replace("_", " ").strip() + "%"
    return column.ilike(pattern) if is_postgres() else column.like(pattern)


def clean_query(raw: str) -> str:
    """The query as providers receive it; 422 naming ``q`` when it is too short or too long."""
    query = " ".join(raw.split())
    if len(query) < MIN_LENGTH:
        raise ValidationError({"q": f"needs at least {MIN_LENGTH} characters"})
    if len(query) > MAX_LENGTH:
        raise ValidationError({"q": f"is longer than {MAX_LENGTH} characters"})
    return query


async def _run(provider: SearchProvider, access: Access, query: str, limit: int) -> tuple[SearchHit, ...]:
    try:
        return tuple(await provider.search(access, query, limit))[:limit]
    except Exception:
        log.exception("search provider %s failed", provider.kind)
        return ()


async def search(access: Access, query: str, limit: int = 5) -> list[SearchGroup]:
    """Up to ``limit`` hits per kind for ``query``; kinds with no hit are left out. Audited (searches may
    touch personal data)."""
    query = clean_query(query)
    providers = sorted(await hooks.call("crm_search_providers"), key=lambda p: p.order)
    found = await asyncio.gather(*(_run(p, access, query, limit) for p in providers))
    await audit.record("search", detail=query[:100], principal=access.principal)
    return [SearchGroup(p.kind, p.label, hits) for p, hits in zip(providers, found, strict=True) if hits]


async def search_api(request: Request) -> Response:
    """``GET /api/search?q=…&limit=5``: hits grouped by kind."""
    from core.web import require_user

    access = Access(require_user(request))
    raw_limit = request.query_params.get("limit", "5")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be a whole number from 1 to {MAX_LIMIT}"})
    groups = await search(access, request.query_params.get("q", ""), int(raw_limit))
    return JSONResponse({"groups": [
        {"kind": g.kind, "label": g.label,
         "hits": [{"title": h.title, "subtitle": h.subtitle, "url": h.url, "kind": h.kind} for h in g.hits]}
        for g in groups]})


async def search_page(request: Request) -> Response:
    """``GET /search?q=…``: the header search without JavaScript, and its "all results" page."""
    from core.web import render, require_user

    access = Access(require_user(request))
    query = request.query_params.get("q", "")
    groups: list[SearchGroup] = []
    error = ""
    if query.strip():
        try:
            groups = await search(access, query, MAX_LIMIT)
        except ValidationError as exc:
            error = next(iter(exc.fields.values()), exc.message)
    return await render(request, "core/search.html", query=query, groups=groups, error=error,
                        status=422 if error else 200)


ROUTES = [Route("/api/search", search_api, methods=["GET"], name="search_api"),
          Route("/search", search_page, methods=["GET"], name="search_page")]
