"""crm_contacts' global-search providers: people and organizations the user may read.

A role that sees phones or e-mails masked searches names only: matching the search text (which holds phones
and e-mails in clear) would let it rebuild a masked value one query at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.hooks import SearchHit, SearchProvider
from core.i18n import gettext
from core.search import contains
from core.security.access import Access
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL

_CLEAR_FIELDS = ("phone", "email")


async def _search(model: str, kind: str, access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    from crm_contacts import listing
    from crm_contacts.services import table_of

    if not access.can(model):
        return []
    table: Any = table_of(model)
    if any(access.is_masked(model, f) or not access.visible_fields(model, [f]) for f in _CLEAR_FIELDS):
        where = contains(table.name, query)
    else:
        where = await listing.where(table, model, listing.ListQuery(q=query))
    columns = [table.id, table.name, table.city]
    rows = await (await access.select(table, model, *columns, where=where)).order_by(table.name).limit(limit)
    return [SearchHit(title=r["name"], subtitle=r["city"] or "", url=f"/contacts/{kind}/{r['id']}", kind=kind)
            for r in rows]


async def _people(access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    return await _search(PERSON_MODEL, "people", access, query, limit)


async def _organizations(access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    return await _search(ORGANIZATION_MODEL, "organizations", access, query, limit)


def providers() -> list[SearchProvider]:
    return [SearchProvider(kind="people", label=gettext("People"), search=_people, order=10),
            SearchProvider(kind="organizations", label=gettext("Organizations"), search=_organizations, order=11)]
