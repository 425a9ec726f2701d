"""List queries shared by the list pages, bulk actions and exports: search, filters, sort, keyset pages.

Search matches a lowercased substring of ``search_text`` (name, company, emails, phones in E.164 and
national form). On PostgreSQL the pg_trgm GIN index serves ``LIKE '%term%'`` from three characters on;
one or two Chinese characters (a given name, a short company name: the most common searches) go to the
``search_grams`` column and its own trigram index instead (see the 2026-11-23T11:00 migration). On SQLite
it is a scan of one column, fast enough for single-machine sizes (see docs/contacts.md for the figures).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from piccolo.columns.combination import WhereRaw

from core import customfields
from core.db import is_postgres
from core.errors import ValidationError
from core.i18n import N_
from core.keyset import Keyset
from core.list_pages import custom_field, is_custom_param
from core.security import audit
from core.security.access import Access
from crm_contacts.api import PERSON_MODEL
from crm_contacts.standardize import fold_width

SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at")
FILTER_KEYS = ("q", "stage", "owner", "tag", "province", "city", "created_from", "created_to", "sort")
CONTACT_VALUES = ("phone", "email")
SHORT_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{1,2}")  # the migration's CJK ranges


@dataclass(frozen=True)
class ListQuery:
    q: str = ""
    stage: str = ""
    owner: str = ""
    tag: str = ""
    province: str = ""
    city: str = ""
    created_from: str = ""
    created_to: str = ""
    sort: str = "-created_at"
    after: str = ""
    limit: int = 50
    #: custom field filters, ``(cf_<key>, value)`` (core.customfields)
    custom: tuple[tuple[str, str], ...] = ()

    def querystring(self, **changes: Any) -> str:
        """The URL query of this list (without the page cursor unless given)."""
        values = {k: getattr(self, k) for k in FILTER_KEYS} | dict(self.custom) | {"after": ""} | changes
        return urlencode({k: v for k, v in values.items() if v not in ("", None)})

    def value(self, param: str) -> str:
        """The value of a custom field filter (``cf_<key>``), or ``""``."""
        return dict(self.custom).get(param, "")


def parse(params: Mapping[str, str]) -> ListQuery:
    """A ``ListQuery`` from request parameters; 422 naming the parameter when one is malformed."""
    sort = params.get("sort") or "-created_at"
    if sort not in SORTS and not is_custom_param(sort.lstrip("-")):
        raise ValidationError({"sort": N_("must be one of %(choices)s or a custom field (cf_<key>)") % {
            "choices": ", ".join(SORTS)}})
    for name in ("created_from", "created_to"):
        if params.get(name):
            try:
                dt.date.fromisoformat(params[name])
            except ValueError:
                raise ValidationError({name: "must be a date like 2026-01-31"}) from None
    try:
        limit = min(max(int(params.get("limit") or 50), 1), 500)
    except ValueError:
        raise ValidationError({"limit": N_("must be a whole number")}) from None
    custom = tuple(sorted((k, str(v).strip()[:200]) for k, v in params.items()
                          if is_custom_param(k) and str(v).strip()))
    return ListQuery(**{k: (params.get(k) or "").strip()[:200] for k in FILTER_KEYS if k != "sort"},
                     sort=sort, after=params.get("after", ""), limit=limit, custom=custom)


def sees_contact_values(acc: Access | None, model: str) -> bool:
    """Whether ``acc`` reads phones and e-mails of ``model`` in clear (``None``: a system caller)."""
    return acc is None or all(not acc.is_masked(model, f) and acc.visible_fields(model, [f]) for f in CONTACT_VALUES)


def _whole_values(table: Any, term: str) -> Any:
    """Names containing ``term``, or a phone / e-mail equal to it once standardized: a role that sees those
    masked may find a customer by a number it already has, never rebuild one from fragments."""
    from core.search import contains
    from crm_contacts.standardize import StandardizationError, email_key, normalize_phone

    clause = contains(table.name, term)
    with contextlib.suppress(StandardizationError):
        clause = clause | (table.phone == normalize_phone(term).e164)
    if "@" in term:
        with contextlib.suppress(StandardizationError):
            clause = clause | (table.email_key == email_key(term))
    return clause


async def where(table: Any, model: str, lq: ListQuery, acc: Access | None = None) -> Any:
    """The filter part of the query (the access layer adds the record rules). With ``acc``, a user who sees
    phones or e-mails masked searches names and whole values only (see :func:`_whole_values`)."""
    from crm_contacts.models import OrganizationTag, PersonTag, Tag

    clauses: list[Any] = []
    if lq.q and not sees_contact_values(acc, model):
        clauses.append(_whole_values(table, fold_width(lq.q).strip()))
    elif lq.q:
        term = fold_width(lq.q).lower().replace("%", "").replace("_", " ").strip()
        digits = "".join(c for c in term if c.isdigit())
        if term and SHORT_CJK.fullmatch(term) and is_postgres():
            # same rows as the LIKE below (a 1-2 character CJK term lies inside one CJK run), but indexed
            clauses.append(WhereRaw(f'"{table._meta.tablename}"."search_grams" LIKE {{}}', f"% {term} %"))
        elif term:
            clause = table.search_text.like(f"%{term}%")
            if digits and len(digits) >= 5 and digits != term:
                clause = clause | table.search_text.like(f"%{digits}%")  # "138-0013-8000" finds the phone
            clauses.append(clause)
    for name in ("stage", "province", "city"):
        if getattr(lq, name):
            clauses.append(table._meta.get_column_by_name(name) == getattr(lq, name))
    if lq.owner == "none":
        clauses.append(table.owner.is_null())
    elif lq.owner:
        if not lq.owner.isdigit():
            raise ValidationError({"owner": N_("must be a user id or 'none'")})
        clauses.append(table.owner == int(lq.owner))
    if lq.created_from:
        clauses.append(table.created_at >= dt.datetime.fromisoformat(lq.created_from).replace(tzinfo=dt.UTC))
    if lq.created_to:
        end = dt.datetime.fromisoformat(lq.created_to).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
        clauses.append(table.created_at < end)
    for param, raw in lq.custom:
        fd = custom_field(model, param, acc, filtering=True)
        custom_clause = customfields.filter_clause(table, fd, raw, param)
        if custom_clause is not None:
            clauses.append(custom_clause)
    if lq.tag:
        link: Any = PersonTag if model == PERSON_MODEL else OrganizationTag
        fk = link._meta.get_column_by_name("person" if model == PERSON_MODEL else "organization")
        tag = await Tag.select(Tag.id).where(Tag.name == lq.tag).first()
        ids = [r[fk._meta.name] for r in await link.select(fk).where(link.tag == (tag["id"] if tag else -1))]
        clauses.append(table.id.is_in(ids or [-1]))
    out = None
    for clause in clauses:
        out = clause if out is None else out & clause
    return out


async def fetch(acc: Access, model: str, lq: ListQuery, columns: list[Any],
                action: str = "read") -> tuple[list[dict[str, Any]], str | None]:
    """One page of presented rows (masking applied) and the cursor of the next page."""
    from crm_contacts.services import table_of

    table = table_of(model)
    name, descending = lq.sort.lstrip("-"), lq.sort.startswith("-")
    keyset: Any
    if is_custom_param(name):  # a custom field: its expression, NULLs last, then the id
        keyset = customfields.CustomKeyset(table, custom_field(model, name, acc, filtering=False), descending)
        col: Any = keyset.select()
    else:
        col = table._meta.get_column_by_name(name)
        keyset = Keyset(col, table.id, descending=descending)
    if lq.q:
        await audit.record("search", model=model, detail=lq.q[:200], principal=acc.principal)
    query = await acc.select(table, model, *columns, table.id, col, where=await where(table, model, lq, acc),
                             action=action)
    if lq.after:
        query = query.where(keyset.after(lq.after))
    rows, nxt = keyset.page(await keyset.order(query).limit(lq.limit + 1), lq.limit)
    return [acc.present(model, dict(r)) for r in rows], nxt
