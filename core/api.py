"""The JSON REST API: every resource an addon exposes gets list / read / create / update / delete.

Conventions: keyset pagination (``?after=<cursor>&limit=``), sorting (``?sort=-created_at``), equality
filters, optimistic concurrency (``version`` in the body or ``If-Match`` → 409 when stale), named actions
(``POST /api/<path>/{id}/<action>``), ``Idempotency-Key`` on unsafe calls, and errors as
``{"error": {"code", "message", "fields"}}``. Every call goes through the access layer and is audited.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from piccolo.table import Table
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core import automation, bulk, db
from core import values as values_
from core.customfields import records as custom_records
from core.customfields import registry as custom_registry
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.i18n import N_
from core.keyset import Keyset
from core.models import IdempotencyKey
from core.security import audit
from core.security.access import Access
from core.web import require_user

Validator = Callable[[dict[str, Any], dict[str, Any] | None], Awaitable[dict[str, Any]]]
ActionFn = Callable[[Request, Access, int], Awaitable[Any]]
CreateFn = Callable[[Access, dict[str, Any]], Awaitable[int]]
#: the largest page a list call returns (the OpenAPI document says so; more is a 422)
MAX_LIMIT = 200
#: the longest ``?q=`` a searchable list takes
MAX_QUERY = 200


@dataclass(frozen=True)
class Collection:
    """Records that belong to one record of a resource (a ticket's messages), at ``/api/<path>/{id}/<name>``:
    ``GET`` runs ``read`` (a page ``{"items": [...], "next": cursor}``), ``POST`` runs ``create`` (201, the new
    item). Both get the parent's id and check every right themselves, the parent's record rule first (a 404
    outside it); ``item``, ``create_body`` and ``params`` describe them in the OpenAPI document."""

    read: ActionFn
    create: ActionFn | None = None
    item: dict[str, Any] = field(default_factory=dict)
    create_body: dict[str, Any] | None = None
    params: tuple[dict[str, Any], ...] = ()
    summary: str = ""


@dataclass(frozen=True)
class Resource:
    path: str
    model: str
    table: type[Table]
    fields: tuple[str, ...]
    writable: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    sortable: tuple[str, ...] = ("id",)
    validate: Validator | None = None
    create: CreateFn | None = None
    actions: dict[str, ActionFn] = field(default_factory=dict)
    archive_on_delete: bool = False
    summary: str = ""
    #: a section title: the kernel also serves list and edit pages for it under /settings (core.forms)
    settings: str = ""
    #: JSON Schema of a writable field beyond what its column says (an enum, a minimum…), for the OpenAPI
    #: document: what ``validate`` refuses should be stated here, so a request valid by the schema passes
    field_schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: JSON Schema of the request body of each action that takes one (OpenAPI document)
    action_bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the JSON column holding the model's custom fields (``core.customfields``): naming it makes the model
    #: extensible; read and written as an object ``{"<key>": value}``, filtered with ``?cf_<key>=``
    custom: str = ""
    #: field → its label (English, marked with ``core.i18n.N_``), shown translated by the settings pages; a field
    #: without one reads as its name in words ("tax_rate" → "Tax rate")
    labels: dict[str, str] = field(default_factory=dict)
    #: free-text search ``?q=`` on the list: the where-clause for the (whitespace-normalised) query, or None
    #: when nothing can match it (e.g. only punctuation)
    search: Callable[[str], Any] | None = None
    #: name → records belonging to one of this resource's (``/api/<path>/{id}/<name>``), see ``Collection``
    collections: dict[str, Collection] = field(default_factory=dict)
    #: with ``search``: ``?q=`` reads only the newest this many matches (by primary key) and applies the filters,
    #: the record rule and the sort to those alone (0: every match). A common word under a filter few of its
    #: rows pass would otherwise walk the whole table for one page. When a window's pages are spent and older
    #: matches remain, the last page's ``q_older`` is what to send as ``?q_before=`` to search the next window
    search_window: int = 0
    #: the rows the caller may reach *within* the record rule, as a where-clause (None: every row the rule
    #: allows), for records the rule cannot express: definitions their owner shares with some users and roles
    #: (crm_reports' reports and dashboards). Applied to list, read, update, delete and reveal (404 outside it)
    reach: Callable[[Access], Awaitable[Any]] | None = None


def _plain(value: Any) -> Any:
    """JSON for what the database returns: RFC 3339 times (``T``, with an offset), decimals as plain digits."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f") if value.is_finite() else None
    return str(value)


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_plain))


class _Json(JSONResponse):
    """A JSON answer encoded once (``_json`` then ``JSONResponse`` encode a list page twice and decode it once),
    with the same text: RFC 3339 times, decimals as digits (``_plain``)."""

    def render(self, content: Any) -> bytes:
        # orjson writes the same text (times with their offset, naive ones as UTC) 5-10x faster than json (NaN
        # as null where json refused it); what it refuses (an integer past 64 bits, a lone surrogate) goes through
        # json as before
        try:
            return orjson.dumps(content, default=_plain, option=orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS)
        except (orjson.JSONEncodeError, TypeError):
            return json.dumps(content, default=_plain, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8")


def coerce(column: Any, raw: Any, field_name: str) -> Any:
    """A query-string (or cursor) value as the column's Python type; 422 naming the field if it is not one."""
    return values_.parse(column, raw, field_name)


def _path_id(request: Request) -> int:
    return values_.record_id(request.path_params["id"])


async def json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body when ``optional``); 422 for anything else, and for
    strings no database can store (NUL, lone surrogates), naming the key. Addons' actions use this too."""
    raw = await request.body()
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValidationError({"body": N_("must be a JSON object")}) from None
    if not isinstance(body, dict):
        raise ValidationError({"body": N_("must be a JSON object")})
    values_.check_json(body)
    return body


_body = json_body


_COLUMNS: dict[tuple[type[Table], tuple[str, ...]], list[Any]] = {}


def _columns(res: Resource) -> list[Any]:
    key = (res.table, res.fields)  # looked up once, not on every list call (Piccolo scans the columns by name)
    found = _COLUMNS.get(key)
    if found is None:
        found = _COLUMNS[key] = [res.table._meta.get_column_by_name(f) for f in ("id", *res.fields) if f != "id"] + [
            res.table._meta.primary_key]
    return list(found)


async def list_records(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    params = request.query_params
    raw_limit = params.get("limit", "50")
    if not raw_limit.isascii() or not raw_limit.isdigit():
        raise ValidationError({"limit": N_("must be a whole number")})
    limit = int(raw_limit)
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError({"limit": f"must be between 1 and {MAX_LIMIT}"})
    sort = params.get("sort", "id")
    desc = sort.startswith("-")
    sort_name = sort.lstrip("-")
    if sort_name not in res.sortable:
        raise ValidationError({"sort": f"must be one of {', '.join(res.sortable)}"})
    keyset = Keyset(res.table._meta.get_column_by_name(sort_name), res.table._meta.primary_key, descending=desc)
    search = res.search
    text = " ".join(params.get("q", "").split()) if search is not None else ""
    if len(text) > MAX_QUERY:
        raise ValidationError({"q": f"is longer than {MAX_QUERY} characters"})
    q_before = values_.record_id(params["q_before"], "q_before") if res.search_window and params.get(
        "q_before") else None
    window: list[int] | None = None
    scopes = await acc.require(res.model)  # the right is checked (and a refusal audited) on every call
    reach = await res.reach(acc) if res.reach is not None else None
    # a narrowed list is not compiled once per shape: what it reaches follows the rows' sharing, not the shape
    shape = _list_shape(acc, res, scopes, params, sort, limit) if not text and reach is None else None
    compiled = _COMPILED.get(shape) if shape is not None else None
    if compiled is None:
        query = await acc.select(res.table, res.model, *_columns(res), where=reach)
        for name in res.filters:
            if name in params:
                column = res.table._meta.get_column_by_name(name)
                query = query.where(column == coerce(column, params[name], name))
        custom = custom_filters(acc, res, params)
        for clause in custom:
            query = query.where(clause)
        if search is not None and text:
            clause = search(text)
            if clause is None:
                return _Json(_windowed(res, {"items": [], "next": None}))
            if res.search_window:
                window = await search_window(res.table, clause, res.search_window, q_before)
                clause = bulk.any_of(res.table._meta.primary_key, window or [-1])
            query = query.where(clause)
        if "after" in params:
            query = query.where(keyset.after(params["after"]))
        query = keyset.order(query).limit(limit + 1)
        if shape is None or custom or not db.is_postgres():
            found = await query
        else:
            compiled = _COMPILED[shape] = query.querystrings[0].compile_string(engine_type="postgres")
            while len(_COMPILED) > _COMPILED_MAX:
                del _COMPILED[next(iter(_COMPILED))]
    if compiled is not None:
        found = await db.fetch_compiled(*compiled)
    rows, nxt = keyset.page(found, limit)
    items = acc.present_all(res.model, rows)
    older = window[-1] if window is not None and len(window) == res.search_window and nxt is None else None
    return _Json(_windowed(res, {"items": items, "next": nxt}, older))


async def search_window(table: type[Table], clause: Any, size: int, before: int | None = None) -> list[int]:
    """The primary keys of the newest ``size`` rows matching ``clause`` (below ``before``), newest first: the
    rows a windowed search reads (``Resource.search_window``; crm_service's agent list reads the same). Rare
    words come from their index, frequent ones from the newest-first walk: either stops at ``size``."""
    pk = table._meta.primary_key
    where = clause if before is None else clause & (pk < before)
    return [r[pk._meta.name] for r in await table.select(pk).where(where).order_by(pk, ascending=False).limit(size)]


def _windowed(res: Resource, page: dict[str, Any], older: int | None = None) -> dict[str, Any]:
    """A list page of a resource with a search window says where the older matches start (None: nothing
    older, or no search)."""
    if res.search_window:
        page["q_older"] = older
    return page


#: list queries compiled to SQL by their shape (PostgreSQL): building a select with Piccolo costs more CPU than the
#: rest of a list call; the same inputs always build the same SQL, so it is built once
_COMPILED: dict[tuple[Any, ...], tuple[str, list[Any]]] = {}
_COMPILED_MAX = 512


def _list_shape(acc: Access, res: Resource, scopes: frozenset[str], params: Any, sort: str, limit: int) -> tuple[
        Any, ...] | None:
    """Everything a list call's SQL is built from (None: not cached — custom field filters, whose SQL follows
    the field definitions of the moment). The record rule's ids are part of it unless the scope is "all"."""
    if any(k.startswith("cf_") for k in params):
        return None
    who = acc.principal
    ids: tuple[Any, ...] = ()
    if "all" not in scopes and who is not None:
        ids = (who.user_id, tuple(sorted(who.teammate_ids)), tuple(sorted(who.team_ids)),
               tuple(sorted(who.subordinate_ids)))
    filters = tuple((n, params[n]) for n in res.filters if n in params)
    return (res.table, res.model, res.fields, scopes, ids, sort, limit, filters, params.get("after"),
            id(db.current()))


def custom_filters(acc: Access, res: Resource, params: Any) -> list[Any]:
    """``?cf_<key>=value`` on an extensible resource: equality on a filterable custom field (several choices:
    holds it); a field the user sees masked or hidden is not filtered on (403, like sorting or searching)."""
    from core.customfields.storage import filter_clause

    out: list[Any] = []
    if not res.custom:
        return out
    for fd in custom_registry.definitions(res.model):
        if not fd.is_filterable or fd.param not in params:
            continue
        if acc.is_masked(res.model, fd.name) or not acc.visible_fields(res.model, [fd.name]):
            raise PermissionDenied(f"you may not filter on {fd.name!r}", field=fd.param)
        clause = filter_clause(res.table, fd, params[fd.param])
        if clause is not None:
            out.append(clause)
    return out


async def get_record(acc: Access, res: Resource, record_id: int, action: str = "read") -> dict[str, Any]:
    """One record ``acc`` may reach for ``action``: the record rule (``Access.get``) and the resource's
    ``reach``; a 404 outside either, so an id leaks nothing."""
    row = await acc.get(res.table, res.model, record_id, action=action)
    if res.reach is not None:
        clause = await res.reach(acc)
        if clause is not None and not await res.table.exists().where(
                (res.table._meta.primary_key == record_id) & clause):
            await audit.record("denied", model=res.model, record_id=record_id,
                               detail=f"{action}: not shared with the caller", principal=acc.principal)
            raise NotFound(f"{res.model} {record_id} not found")
    return row


async def read_record(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    row = await get_record(acc, res, _path_id(request))
    shown = acc.present(res.model, {k: row[k] for k in ("id", *res.fields) if k in row})
    headers = {"ETag": f'W/"{row.get("version", 0)}"'}
    return JSONResponse(_json(shown), headers=headers)


async def _check_fields(acc: Access, res: Resource, body: dict[str, Any], *,
                        creating: bool = False) -> dict[str, Any]:
    values = {k: v for k, v in body.items() if k != "version"}
    await acc.check_write(res.model, values, allowed=res.writable, table=res.table)
    values = await custom_records.prepare(acc, res.model, values, creating=creating)  # custom fields
    values = await _check_values(res, values)
    await acc.check_references(res.table, values)  # a reference is checked like a read of what it names
    return values


def _column(table: type[Table], name: str) -> Any:
    try:
        return table._meta.get_column_by_name(name)
    except ValueError:
        return None


async def _check_values(res: Resource, values: dict[str, Any]) -> dict[str, Any]:
    """Each value bound for a column checked against it (type, range, length, null, finite, NUL-free): a 422
    naming the field instead of a database error. (Foreign keys: ``Access.check_references``.)"""
    out = dict(values)
    for name, value in values.items():
        column = _column(res.table, name) if "." not in name else None
        if column is None:
            continue  # not a column (e.g. quote ``lines``): the resource's own validation reads it
        out[name] = values_.check(column, value, name)
    return out


async def create_values(acc: Access, res: Resource, values: dict[str, Any]) -> int:
    """Create one record of ``res`` from ``values`` (rights, required fields, validation, audit): the one
    write path behind the JSON API and the settings forms."""
    await acc.require(res.model, "create")
    values = await _check_fields(acc, res, values, creating=True)
    missing = [f for f in res.required if values.get(f) in (None, "")]
    if missing:
        raise ValidationError({f: "is required" for f in missing})
    async with db.atomic():
        if res.validate:
            values = await res.validate(values, None)
        if res.create:
            new_id = await res.create(acc, values)
        else:
            if "owner" in [c._meta.name for c in res.table._meta.columns] and acc.principal:
                values.setdefault("owner", acc.principal.user_id)
            row = res.table(_data={res.table._meta.get_column_by_name(k): v for k, v in values.items()})
            await row.save()
            new_id = int(getattr(row, res.table._meta.primary_key._meta.name))
        await audit.record("create", model=res.model, record_id=new_id,
                           changes=audit.diff(None, custom_records.flat(res.model, values)))
        await automation.record_changed(res.model, new_id, None, values)  # evaluated off the request
    return new_id


async def create_record(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    new_id = await create_values(acc, res, await _body(request))
    row_out = await acc.get(res.table, res.model, new_id)
    shown = acc.present(res.model, {k: row_out[k] for k in ("id", *res.fields) if k in row_out})
    return JSONResponse(_json(shown), status_code=201)


async def update_values(acc: Access, res: Resource, record_id: int, body: dict[str, Any],
                        expected: int | None) -> None:
    """Update one record if it is still at version ``expected`` (409 otherwise); rights, validation, audit.

    A table without a ``version`` column (configuration rows) takes the last write."""
    version_col = _column(res.table, "version")
    if version_col is not None:
        if expected is None:
            raise ValidationError({"version": N_("is required (or send If-Match) so concurrent edits are not lost")})
        expected = values_.check(version_col, expected, "version")
    values = await _check_fields(acc, res, body)
    async with db.atomic():
        before = await get_record(acc, res, record_id, "update")
        if res.custom in values:  # the fields sent, merged into those stored
            values = custom_records.merge(res.model, before.get(res.custom), values)
        if res.validate:
            values = await res.validate(values, before)
        pk = res.table._meta.primary_key
        changes: dict[Any, Any] = {res.table._meta.get_column_by_name(k): v for k, v in values.items()}
        where = pk == record_id
        if version_col is not None:
            # Piccolo builds "version + 1" in SQL from the operator
            changes[version_col] = version_col + 1
            where = where & (version_col == expected)
        updated = await res.table.update(changes).where(where).returning(pk) if changes else [before]
        if not updated:
            raise Conflict(f"{res.model} {record_id} was changed by someone else (version {before['version']})",
                           field="version")
        await audit.record("update", model=res.model, record_id=record_id, changes=audit.diff(
            custom_records.flat(res.model, {k: before.get(k) for k in values}),
            custom_records.flat(res.model, values)))
        await automation.record_changed(res.model, record_id, before, values)


async def update_record(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    body = await _body(request)
    expected = body.get("version")
    if "if-match" in request.headers:
        etag = _ETAG.fullmatch(request.headers["if-match"].strip())
        if etag is None:
            raise ValidationError({"If-Match": 'must be an ETag this API gave out, like W/"3"'})
        expected = int(etag.group(1)) if expected is None else expected
    await update_values(acc, res, _path_id(request), body, expected)
    return await read_record(request, res)


_ETAG = re.compile(r'(?:W/)?"?([0-9]{1,10})"?', re.ASCII)


async def delete_values(acc: Access, res: Resource, record_id: int) -> None:
    """Delete (or archive, for resources that archive) one record; audited. An approval rule on ``core.delete``
    for the model may hold it (:func:`core.approvals.require`: asked before the transaction, so the request
    outlives the refusal)."""
    from core.approvals import DELETE, flow

    if await flow.active_rules(DELETE, res.model):
        await flow.require(acc, DELETE, res.model, record_id,
                           await get_record(acc, res, record_id, "delete"))
    async with db.atomic():
        before = await get_record(acc, res, record_id, "delete")
        pk = res.table._meta.primary_key
        if res.archive_on_delete:
            await res.table.update({res.table._meta.get_column_by_name("is_archived"): True}).where(pk == record_id)
            await audit.record("archive", model=res.model, record_id=record_id)
            await automation.record_changed(res.model, record_id, before, {"is_archived": True})
        else:
            used = await _still_used_by(res.table, record_id)
            if used:
                raise Conflict(f"{res.model} {record_id} is still used by {', '.join(used)}: it cannot be deleted "
                               "(deactivate or archive it instead)", field="id")
            await res.table.delete().where(pk == record_id)
            await audit.record("delete", model=res.model, record_id=record_id,
                               changes=audit.diff({k: before.get(k) for k in res.fields}, None))
            await automation.record_changed(res.model, record_id, before, None)


async def _still_used_by(table: type[Table], record_id: int) -> list[str]:
    """Rows of installed tables whose foreign key names this record and that a delete would break (RESTRICT)
    or silently unlink (SET NULL); rows that cascade belong to the record and go with it."""
    from piccolo.columns import OnDelete

    from core.migrations_registry import tables_of
    from core.runtime import current

    tables = [t for a in current().addons for t in tables_of(a.models, a.name)]
    out: list[str] = []
    for other in tables:
        for fk in other._meta.foreign_key_columns:
            meta = fk._foreign_key_meta
            if meta.resolved_references is not table or meta.on_delete == OnDelete.cascade:
                continue
            count = await other.count().where(fk == record_id)
            if count:
                out.append(f"{count} {other._meta.tablename} row(s) ({fk._meta.name})")
    return out


async def delete_record(request: Request, res: Resource) -> Response:
    await delete_values(Access(require_user(request)), res, _path_id(request))
    return Response(status_code=204)


async def run_action(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    name = request.path_params["action"]
    fn = res.actions.get(name)
    if fn is None:
        raise NotFound(f"no action {name!r} on {res.model}")
    result = await fn(request, acc, _path_id(request))
    if isinstance(result, Response):
        return result
    return JSONResponse(_json(result))


async def reveal_field(request: Request, res: Resource) -> Response:
    """The clear value of one masked field of one record, for a role with the reveal right (audited)."""
    acc = Access(require_user(request))
    name = request.path_params["field"]
    if name not in res.fields:
        raise NotFound(f"no field {name!r} on {res.model}")
    if res.reach is not None:
        await get_record(acc, res, _path_id(request))
    value = await acc.reveal(res.table, res.model, _path_id(request), name)
    return JSONResponse(_json({"field": name, "value": value}))


def idempotent(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Replay the stored response for a repeated ``Idempotency-Key``; 409 if the body differs.

    The key is reserved (a unique row, status 0) *before* the request runs, so of N concurrent requests with
    one key exactly one runs: the others wait for its answer and replay it, or get a 409 if it takes longer
    than ``IDEMPOTENCY_WAIT`` seconds. A request that fails with a 5xx or an exception releases the key."""

    async def wrapped(request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if key is None:
            return await handler(request)
        who = require_user(request)
        if not _KEY.fullmatch(key):
            raise ValidationError({"Idempotency-Key": "must be 1 to 200 visible ASCII characters"})
        body = await request.body()
        digest = hashlib.sha256(request.method.encode() + request.url.path.encode() + body).hexdigest()
        # keyed by who *and* with which roles: a token with fewer roles never gets a reply made for more
        roles = hashlib.sha256(",".join(sorted(who.roles)).encode()).hexdigest()[:16]
        scope = f"{who.user_id}:{roles}:{key[:200]}"
        deadline = asyncio.get_running_loop().time() + IDEMPOTENCY_WAIT
        while not await _reserve(scope, digest):
            seen = await IdempotencyKey.select().where(IdempotencyKey.scope == scope).first()
            if seen is None:
                continue  # released by a failed first request: try to take it
            if seen["request_hash"] != digest:
                raise Conflict(N_("this Idempotency-Key was used with a different request"), field="Idempotency-Key")
            if seen["status"] != _PENDING:
                await audit.record("idempotent_replay", detail=f"{request.method} {request.url.path}"[:500],
                                   principal=who)
                return Response(seen["body"] or None, status_code=seen["status"],
                                media_type="application/json" if seen["body"] else None,
                                headers={"Idempotent-Replayed": "true"})
            if asyncio.get_running_loop().time() > deadline:
                raise Conflict(N_("a request with this Idempotency-Key is still running: retry later"),
                               field="Idempotency-Key")
            await asyncio.sleep(0.05)
        try:
            response = await handler(request)
        except BaseException:
            await IdempotencyKey.delete().where(IdempotencyKey.scope == scope)
            raise
        if response.status_code < 500:
            await IdempotencyKey.update({IdempotencyKey.status: response.status_code,
                                         IdempotencyKey.body: bytes(getattr(response, "body", b"")).decode()}).where(
                IdempotencyKey.scope == scope)
        else:
            await IdempotencyKey.delete().where(IdempotencyKey.scope == scope)
        return response

    return wrapped


_PENDING = 0
_KEY = re.compile(r"[!-~]{1,200}")
#: how long a request waits for another one with the same Idempotency-Key to finish before a 409
IDEMPOTENCY_WAIT = 10.0


async def _reserve(scope: str, digest: str) -> bool:
    """Take the key (insert its row, status pending); False if another request holds it already."""
    rows = await IdempotencyKey.insert(IdempotencyKey(scope=scope, request_hash=digest, status=_PENDING, body="")
                                       ).on_conflict(target=IdempotencyKey.scope, action="DO NOTHING").returning(
        IdempotencyKey.id)
    return bool(rows)


def resource_routes(res: Resource) -> list[BaseRoute]:
    base = "/api" + res.path

    def bind(fn: Callable[[Request, Resource], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await fn(request, res)

        return endpoint

    def by_method(path: str, handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Route:
        # one route per path, so a method it lacks gets a 405 whose Allow lists every method it has
        async def endpoint(request: Request) -> Response:
            return await handlers["GET" if request.method == "HEAD" else request.method](request)

        return Route(path, endpoint, methods=list(handlers))

    def nested(fn: ActionFn, status: int) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            result = await fn(request, Access(require_user(request)), _path_id(request))
            return result if isinstance(result, Response) else JSONResponse(_json(result), status_code=status)

        return endpoint

    collections: list[BaseRoute] = []
    for name, coll in res.collections.items():
        handlers = {"GET": nested(coll.read, 200)}
        if coll.create is not None:
            handlers["POST"] = idempotent(nested(coll.create, 201))
        collections.append(by_method(f"{base}/{{id:int}}/{name}", handlers))
    # a resource without writable fields is read-only over the API: no POST, no PATCH (405)
    collection = {"GET": bind(list_records)}
    record = {"GET": bind(read_record), "DELETE": idempotent(bind(delete_record))}
    if res.writable:
        collection["POST"] = idempotent(bind(create_record))
        record["PATCH"] = idempotent(bind(update_record))
    return [
        by_method(base, collection),
        by_method(base + "/{id:int}", record),
        *collections,  # before the actions' catch-all, which would take their POST
        Route(base + "/{id:int}/{action:str}", idempotent(bind(run_action)), methods=["POST"]),
        Route(base + "/{id:int}/reveal/{field:str}", bind(reveal_field), methods=["POST"]),
    ]


def routes(runtime: Any) -> list[BaseRoute]:
    """API routes of the installed addons (resources collected at boot) plus ``/api/openapi.json``."""
    resources = [r for r in runtime.state.get("api_resources", []) if isinstance(r, Resource)]
    out: list[BaseRoute] = []
    for res in resources:
        out.extend(resource_routes(res))

    async def openapi_doc(request: Request) -> Response:
        from core.openapi import document

        await custom_registry.fresh()  # the document describes the custom fields defined now
        return JSONResponse(document(resources))

    out.append(Route("/api/openapi.json", openapi_doc, methods=["GET"]))
    return out
