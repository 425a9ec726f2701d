"""crm_contacts' global-search providers: people and organizations the user may read.

Matching follows the people list (``listing.where``): a role that sees phones or e-mails masked matches names
and whole standardized values only, never fragments of a masked value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.hooks import SearchHit, SearchProvider
from core.i18n import gettext
from core.security.access import Access
from crm_contacts.api import ORGANIZATION_MODEL, PERSON_MODEL


async def _search(model: str, kind: str, access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    from crm_contacts import listing
    from crm_contacts.services import table_of

    if not access.can(model):
        return []
    table: Any = table_of(model)
    where = await listing.where(table, model, listing.ListQuery(q=query), access)
    columns = [table.id, table.name, table.city]
    # newest first, as the lists: the id index is walked backwards and stops at ``limit`` matches, where
    # ordering by name would sort every match of a common word first (~250 ms on 1M people)
    select = await access.select(table, model, *columns, where=where)
    rows = await select.order_by(table.id, ascending=False).limit(limit)
    return [SearchHit(title=r["name"], subtitle=r["city"] or "", url=f"/contacts/{kind}/{r['id']}", kind=kind)
            for r in rows]


async def _people(access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    return await _search(PERSON_MODEL, "people", access, query, limit)


async def _organizations(access: Access, query: str, limit: int) -> Sequence[SearchHit]:
    return await _search(ORGANIZATION_MODEL, "organizations", access, query, limit)


def providers() -> list[SearchProvider]:
    return [SearchProvider(kind="people", label=gettext("People"), search=_people, order=10),
            SearchProvider(kind="organizations", label=gettext("Organizations"), search=_organizations, order=11)]
