"""The knowledge base: articles in Markdown (rendered by markdown-it-py, sanitised by nh3), searched by words.

Chinese has no spaces, so a substring search either misses words or matches across word boundaries. Each
article's ``search_text`` is its words as jieba segments them (search mode: "退货退款" also yields "退货" and
"退款"), lower-cased, space separated and space padded. PostgreSQL searches it with full-text search
(``to_tsvector('simple', …) @@ plainto_tsquery('simple', …)``, every query word required); SQLite, which has
no such thing built in, requires each query word as a whole token (`` word `` with its spaces).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import jieba
import nh3
from markdown_it import MarkdownIt
from piccolo.columns.base import Column
from piccolo.columns.combination import WhereRaw
from piccolo.custom_types import Combinable
from piccolo.query import OrderByRaw

from core import db
from core.errors import ValidationError
from core.i18n import N_
from core.search import contains
from core.security import audit
from core.security.access import Access
from crm_service.manifest import ARTICLE
from crm_service.models import Article

jieba.setLogLevel(logging.WARNING)
_md = MarkdownIt("commonmark", {"html": False, "linkify": False})
_WORD = re.compile(r"\w+", re.UNICODE)
LANGUAGES = {"zh_CN": N_("Chinese"), "en": N_("English")}
MAX_WORDS = 12


def render(markdown: str) -> str:
    """Safe HTML for an article body: raw HTML in the Markdown is escaped, and the result sanitised again."""
    return nh3.clean(_md.render(markdown or ""), link_rel="noopener noreferrer nofollow")


def words(text: str) -> list[str]:
    """The searchable words of ``text``: jieba's search-mode segments that contain a letter or digit."""
    out: list[str] = []
    for token in jieba.cut_for_search(text or ""):
        token = token.strip().lower()
        if token and _WORD.search(token):
            out.append(token)
    return out


def search_text(title: str, body: str) -> str:
    return " " + " ".join(dict.fromkeys(words(f"{title}\n{body}"))) + " "


def match(column: Column, query: str, *, vector: str = "") -> Combinable | None:
    """Rows whose segmented ``column`` holds every word of ``query`` (None: the query has no word).

    PostgreSQL: full-text search, served by a GIN index on ``to_tsvector('simple', column)``, or on the stored
    ``tsvector`` column named ``vector`` (the same words, kept by the database); SQLite: each word as a whole
    space-padded token."""
    terms = list(dict.fromkeys(words(query)))[:MAX_WORDS]
    if not terms:
        return None
    if db.is_postgres():
        # names from the table definition, never from input; the words go in as a bound parameter
        table = f'"{column._meta.table._meta.tablename}"'
        document = (f'{table}."{vector}"' if vector
                    else f"to_tsvector('simple', {table}.\"{column._meta.db_column_name}\")")
        return WhereRaw(f"{document} @@ plainto_tsquery('simple', {{}})", " ".join(terms))
    clause: Combinable | None = None
    for term in terms:
        one = contains(column, f" {term} ")
        clause = one if clause is None else clause & one
    return clause


def _match(query: str) -> Combinable | None:
    return match(Article.search_text, query, vector="search_vector")


#: a search first reads its matches among this many newest articles only (``(updated_at, id)`` index): a
#: common word has its page there, and the newest matches of the window are the newest of all. Without it
#: PostgreSQL fetched and sorted every match (12,500 for a common word at 50,000 articles)
WINDOW = 2000


def _in_window() -> Combinable:
    """Articles at or after the WINDOW-th newest (NULL, hence nothing, when there are fewer articles)."""
    return WhereRaw('("crm_service_article"."updated_at", "crm_service_article"."id") >= (SELECT a.updated_at, '
                    'a.id FROM "crm_service_article" a ORDER BY a.updated_at DESC, a.id DESC OFFSET {} LIMIT 1)',
                    int(WINDOW) - 1)


#: outside the window the matches are few (fewer than a page in WINDOW articles): sorted after the GIN index
#: found them all. An expression, not the column, so the planner cannot walk the btree index newest first
#: testing every article (it estimates two words as independent: two frequent words that never meet read the
#: whole index, 42 ms at 50,000 articles)
_BY_SORT = (OrderByRaw('"crm_service_article"."updated_at" + interval \'0 s\''), Article.id)
_BY_INDEX = (Article.updated_at, Article.id)


async def _newest(
    select: Callable[[Combinable], Awaitable[Any]], where: Combinable, limit: int
) -> list[dict[str, Any]]:
    """The newest ``limit`` rows of ``select(where)``: from the window when it holds a page, else from all."""
    if db.is_postgres():
        rows = list(await (await select(where & _in_window())).order_by(*_BY_INDEX, ascending=False).limit(limit))
        if len(rows) >= limit:
            return rows
        return list(await (await select(where)).order_by(*_BY_SORT, ascending=False).limit(limit))
    return list(await (await select(where)).order_by(*_BY_INDEX, ascending=False).limit(limit))


async def search(access: Access, query: str, *, limit: int = 10, public_only: bool = False,
                 language: str | None = None) -> list[dict[str, Any]]:
    """Articles matching every word of ``query`` that ``access`` may read, newest first."""
    match = _match(query)
    if match is None or not access.can(ARTICLE):
        return []
    if public_only:
        match = match & (Article.is_public == True)  # noqa: E712
    if language:
        match = match & (Article.language == language)

    async def select(where: Combinable) -> Any:
        return await access.select(Article, ARTICLE, Article.id, Article.title, Article.category,
                                   Article.language, Article.is_public, where=where)

    return await _newest(select, match, limit)


async def public_search(query: str, *, limit: int = 10) -> list[dict[str, Any]]:
    """Public articles for the customer portal (no staff rights involved: only ``is_public`` ones)."""
    match = _match(query)
    if match is None:
        return []

    async def select(where: Combinable) -> Any:
        return Article.select(Article.id, Article.title, Article.category).where(where)

    return await _newest(select, match & (Article.is_public == True), limit)  # noqa: E712


async def suggest(access: Access, subject: str, body: str = "", *, limit: int = 5) -> list[dict[str, Any]]:
    """Articles for a ticket: those sharing the most words with its subject (then its body)."""
    if not access.can(ARTICLE):
        return []
    terms = list(dict.fromkeys(words(f"{subject} {body[:2000]}")))
    terms = [t for t in terms if len(t) > 1][:MAX_WORDS]
    scores: dict[int, tuple[int, dict[str, Any]]] = {}
    for term in terms:
        for row in await search(access, term, limit=20):
            n, _ = scores.get(int(row["id"]), (0, row))
            scores[int(row["id"])] = (n + 1, row)
    ranked = sorted(scores.values(), key=lambda s: (-s[0], -int(s[1]["id"])))
    return [row for _, row in ranked[:limit]]


def clean_article(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "title" in out:
        out["title"] = " ".join(str(out["title"] or "").split())
        if not out["title"]:
            raise ValidationError({"title": N_("is required")})
        if len(out["title"]) > 200:
            raise ValidationError({"title": N_("is longer than %(limit)s characters") % {"limit": 200}})
    if "language" in out and out["language"] not in LANGUAGES:
        raise ValidationError({"language": N_("must be one of: %(choices)s") % {"choices": ", ".join(LANGUAGES)}})
    if len(str(out.get("body", ""))) > 200_000:
        raise ValidationError({"body": N_("is longer than %(limit)s characters") % {"limit": 200_000}})
    return out


async def save_article(acc: Access, values: dict[str, Any], article_id: int | None = None) -> int:
    allowed = ("title", "body", "category", "language", "is_public")
    await acc.check_write(ARTICLE, values, allowed=allowed)
    data = clean_article(values)
    now = dt.datetime.now(dt.UTC)
    async with db.atomic():
        if article_id is None:
            await acc.require(ARTICLE, "create")
            if "title" not in data:
                raise ValidationError({"title": N_("is required")})
            data["search_text"] = search_text(data["title"], str(data.get("body", "")))
            row = Article(_data={Article._meta.get_column_by_name(k): v for k, v in data.items()})
            await row.save()
            await audit.record("create", model=ARTICLE, record_id=row.id, changes=audit.diff(None, data))
            return int(row.id)
        before = await acc.get(Article, ARTICLE, article_id, action="update")
        merged = {**before, **data}
        data["search_text"] = search_text(merged["title"], merged["body"])
        await Article.update({**{Article._meta.get_column_by_name(k): v for k, v in data.items()},
                              Article.updated_at: now, Article.version: Article.version + 1}).where(
            Article.id == article_id)
        await audit.record("update", model=ARTICLE, record_id=article_id,
                           changes=audit.diff({k: before[k] for k in data if k != "search_text"},
                                              {k: v for k, v in data.items() if k != "search_text"}))
        return article_id
