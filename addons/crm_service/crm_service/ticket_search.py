"""Searching tickets by the words of their subject and description, Chinese ones included.

A substring search (``ILIKE '%退货%'``) cannot use the trigram index for a two-character Chinese word and scans
the table; so, as the knowledge base does, each ticket keeps ``search_text``: its words as jieba segments them,
rewritten on every write of the subject or description (``tickets.py``, the API's validator), and searched
with PostgreSQL full-text search over a GIN index (SQLite: whole-token match). A query that is a ticket
reference (``SR-000042``, or ``#42``) finds that ticket too.
"""

from __future__ import annotations

import re
from typing import Any

from piccolo.custom_types import Combinable

from crm_service import kb
from crm_service.models import Ticket

_REFERENCE = re.compile(r"^(?:SR-|#)0*(\d{1,12})$", re.IGNORECASE)


def text_of(subject: str, description: str) -> str:
    return kb.search_text(subject or "", description or "")


def refresh(values: dict[str, Any], before: dict[str, Any] | None = None) -> dict[str, Any]:
    """``values`` plus the ``search_text`` its subject and description (or ``before``'s) give, when either is
    written; unchanged otherwise."""
    if "subject" not in values and "description" not in values:
        return values
    merged = {**(before or {}), **values}
    return {**values, "search_text": text_of(str(merged.get("subject") or ""),
                                             str(merged.get("description") or ""))}


def where(query: str) -> Combinable | None:
    """The tickets matching ``query`` (None: nothing can match)."""
    query = " ".join(query.split())
    ref = _REFERENCE.match(query)
    if ref:
        return Ticket.id == int(ref.group(1))
    return kb.match(Ticket.search_text, query)
