"""The JSON REST API: every resource an addon exposes gets list / read / create / update / delete.

Conventions: keyset pagination (``?after=<cursor>&limit=``), sorting (``?sort=-created_at``), equality
filters, optimistic concurrency (``version`` in the body or ``If-Match`` → 409 when stale), named actions
(``POST /api/<path>/{id}/<action>``), ``Idempotency-Key`` on unsafe calls, and errors as
``{"error": {"code", "message", "fields"}}``. Every call goes through the access layer and is audited.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from piccolo.table import Table
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from core import db, plugins
from core.errors import Conflict, NotFound, ValidationError
from core.models import IdempotencyKey
from core.security import audit
from core.security.access import Access
from core.web import require_user

Validator = Callable[[dict[str, Any], dict[str, Any] | None], Awaitable[dict[str, Any]]]
ActionFn = Callable[[Request, Access, int], Awaitable[Any]]
CreateFn = Callable[[Access, dict[str, Any]], Awaitable[int]]


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


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def coerce(column: Any, raw: Any, field_name: str) -> Any:
    """A query-string (or cursor) value as the column's Python type; 422 naming the field if it is not one."""
    import datetime as dt
    import decimal

    from piccolo.columns import BigInt, Boolean, Date, ForeignKey, Integer, Numeric, Serial, Timestamp, Timestamptz

    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(column, Boolean):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1")
        if isinstance(column, (Integer, BigInt, Serial, ForeignKey)):
            return int(raw)
        if isinstance(column, Numeric):
            return decimal.Decimal(raw)
        if isinstance(column, (Timestamp, Timestamptz)):
            return dt.datetime.fromisoformat(raw)
        if isinstance(column, Date):
            return dt.date.fromisoformat(raw)
    except (ValueError, decimal.InvalidOperation):
        raise ValidationError({field_name: f"{raw[:50]!r} is not a valid {type(column).__name__.lower()}"}) from None
    return raw


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode()


def _uncursor(raw: str) -> list[Any]:
    try:
        out = json.loads(base64.urlsafe_b64decode(raw.encode()))
        assert isinstance(out, list) and len(out) == 2
        return out
    except Exception:
        raise ValidationError({"after": "is not a cursor this API gave out"}) from None


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except Exception:
        raise ValidationError({"body": "must be a JSON object"}) from None
    if not isinstance(body, dict):
        raise ValidationError({"body": "must be a JSON object"})
    return body


def _columns(res: Resource) -> list[Any]:
    return [res.table._meta.get_column_by_name(f) for f in ("id", *res.fields) if f != "id"] + [
        res.table._meta.primary_key]


async def list_records(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    params = request.query_params
    try:
        limit = min(max(int(params.get("limit", "50")), 1), 200)
    except ValueError:
        raise ValidationError({"limit": "must be a whole number"}) from None
    sort = params.get("sort", "id")
    desc = sort.startswith("-")
    sort_name = sort.lstrip("-")
    if sort_name not in res.sortable:
        raise ValidationError({"sort": f"must be one of {', '.join(res.sortable)}"})
    col = res.table._meta.get_column_by_name(sort_name)
    pk = res.table._meta.primary_key
    query = await acc.select(res.table, res.model, *_columns(res))
    for name in res.filters:
        if name in params:
            column = res.table._meta.get_column_by_name(name)
            query = query.where(column == coerce(column, params[name], name))
    if "after" in params:
        value, last_id = _uncursor(params["after"])
        value = coerce(col, value, "after") if value is not None else None
        if sort_name == "id":
            query = query.where(pk < last_id if desc else pk > last_id)
        elif desc:
            query = query.where((col < value) | ((col == value) & (pk < last_id)))
        else:
            query = query.where((col > value) | ((col == value) & (pk > last_id)))
    query = query.order_by(col, ascending=not desc)
    if sort_name != "id":
        query = query.order_by(pk, ascending=not desc)
    rows = await query.limit(limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [acc.present(res.model, dict(r)) for r in rows]
    nxt = _cursor([rows[-1][sort_name], rows[-1]["id"]]) if more and rows else None
    return JSONResponse(_json({"items": items, "next": nxt}))


async def read_record(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    row = await acc.get(res.table, res.model, int(request.path_params["id"]))
    shown = acc.present(res.model, {k: row[k] for k in ("id", *res.fields) if k in row})
    headers = {"ETag": f'W/"{row.get("version", 0)}"'}
    return JSONResponse(_json(shown), headers=headers)


async def _check_fields(acc: Access, res: Resource, body: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in body.items() if k != "version"}
    await acc.check_write(res.model, values, allowed=res.writable)
    return values


async def create_values(acc: Access, res: Resource, values: dict[str, Any]) -> int:
    """Create one record of ``res`` from ``values`` (rights, required fields, validation, audit): the one
    write path behind the JSON API and the settings forms."""
    await acc.require(res.model, "create")
    values = await _check_fields(acc, res, values)
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
        await audit.record("create", model=res.model, record_id=new_id, changes=audit.diff(None, values))
    return new_id


async def create_record(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    new_id = await create_values(acc, res, await _body(request))
    row_out = await acc.get(res.table, res.model, new_id)
    shown = acc.present(res.model, {k: row_out[k] for k in ("id", *res.fields) if k in row_out})
    return JSONResponse(_json(shown), status_code=201)


async def update_values(acc: Access, res: Resource, record_id: int, body: dict[str, Any],
                        expected: int | None) -> None:
    """Update one record if it is still at version ``expected`` (409 otherwise); rights, validation, audit."""
    if expected is None:
        raise ValidationError({"version": "is required (or send If-Match) so concurrent edits are not lost"})
    values = await _check_fields(acc, res, body)
    async with db.atomic():
        before = await acc.get(res.table, res.model, record_id, action="update")
        if res.validate:
            values = await res.validate(values, before)
        version_col = res.table._meta.get_column_by_name("version")
        changes: dict[Any, Any] = {res.table._meta.get_column_by_name(k): v for k, v in values.items()}
        # Piccolo builds "version + 1" in SQL from the operator
        changes[version_col] = version_col + 1  # type: ignore[operator]
        updated = await res.table.update(changes).where(
            (res.table._meta.primary_key == record_id) & (version_col == expected)).returning(
            res.table._meta.primary_key)
        if not updated:
            raise Conflict(f"{res.model} {record_id} was changed by someone else (version {before['version']})")
        await audit.record("update", model=res.model, record_id=record_id,
                           changes=audit.diff({k: before.get(k) for k in values}, values))


async def update_record(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    body = await _body(request)
    expected = body.get("version")
    if_match = request.headers.get("if-match", "").strip('W/"')
    if expected is None and if_match:
        expected = int(if_match) if if_match.isdigit() else None
    await update_values(acc, res, int(request.path_params["id"]), body, expected)
    return await read_record(request, res)


async def delete_values(acc: Access, res: Resource, record_id: int) -> None:
    """Delete (or archive, for resources that archive) one record; audited."""
    async with db.atomic():
        before = await acc.get(res.table, res.model, record_id, action="delete")
        pk = res.table._meta.primary_key
        if res.archive_on_delete:
            await res.table.update({res.table._meta.get_column_by_name("is_archived"): True}).where(pk == record_id)
            await audit.record("archive", model=res.model, record_id=record_id)
        else:
            await res.table.delete().where(pk == record_id)
            await audit.record("delete", model=res.model, record_id=record_id,
                               changes=audit.diff({k: before.get(k) for k in res.fields}, None))


async def delete_record(request: Request, res: Resource) -> Response:
    await delete_values(Access(require_user(request)), res, int(request.path_params["id"]))
    return Response(status_code=204)


async def run_action(request: Request, res: Resource) -> Response:
    acc = Access(require_user(request))
    name = request.path_params["action"]
    fn = res.actions.get(name)
    if fn is None:
        raise NotFound(f"no action {name!r} on {res.model}")
    result = await fn(request, acc, int(request.path_params["id"]))
    if isinstance(result, Response):
        return result
    return JSONResponse(_json(result))


async def reveal_field(request: Request, res: Resource) -> Response:
    """The clear value of one masked field of one record, for a role with the reveal right (audited)."""
    acc = Access(require_user(request))
    name = request.path_params["field"]
    if name not in res.fields:
        raise NotFound(f"no field {name!r} on {res.model}")
    value = await acc.reveal(res.table, res.model, int(request.path_params["id"]), name)
    return JSONResponse(_json({"field": name, "value": value}))


def idempotent(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Replay the stored response for a repeated ``Idempotency-Key``; 409 if the body differs."""

    async def wrapped(request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if not key:
            return await handler(request)
        who = require_user(request)
        body = await request.body()
        digest = hashlib.sha256(request.method.encode() + request.url.path.encode() + body).hexdigest()
        scope = f"{who.user_id}:{key[:200]}"
        seen = await IdempotencyKey.select().where(IdempotencyKey.scope == scope).first()
        if seen is not None:
            if seen["request_hash"] != digest:
                raise Conflict("this Idempotency-Key was used with a different request")
            return Response(seen["body"], status_code=seen["status"], media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
        response = await handler(request)
        if response.status_code < 500:
            await IdempotencyKey.insert(IdempotencyKey(scope=scope, request_hash=digest,
                                                       status=response.status_code,
                                                       body=bytes(response.body).decode()))
        return response

    return wrapped


def resource_routes(res: Resource) -> list[BaseRoute]:
    base = "/api" + res.path

    def bind(fn: Callable[[Request, Resource], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return await fn(request, res)

        return endpoint

    return [
        Route(base, bind(list_records), methods=["GET"]),
        Route(base, idempotent(bind(create_record)), methods=["POST"]),
        Route(base + "/{id:int}", bind(read_record), methods=["GET"]),
        Route(base + "/{id:int}", idempotent(bind(update_record)), methods=["PATCH"]),
        Route(base + "/{id:int}", idempotent(bind(delete_record)), methods=["DELETE"]),
        Route(base + "/{id:int}/{action:str}", idempotent(bind(run_action)), methods=["POST"]),
        Route(base + "/{id:int}/reveal/{field:str}", bind(reveal_field), methods=["POST"]),
    ]


async def collect_resources(runtime: Any) -> list[Resource]:
    return await plugins.collect(runtime.plugins, "crm_api_resources")


def routes(runtime: Any) -> list[BaseRoute]:
    """API routes of the installed addons plus ``/api/openapi.json`` (hooks here are synchronous)."""
    resources = [r for r in _sync_collect(runtime) if isinstance(r, Resource)]
    runtime.state["api_resources"] = resources
    out: list[BaseRoute] = []
    for res in resources:
        out.extend(resource_routes(res))

    async def openapi_doc(request: Request) -> Response:
        from core.openapi import document

        return JSONResponse(document(resources))

    out.append(Route("/api/openapi.json", openapi_doc, methods=["GET"]))
    return out


def _sync_collect(runtime: Any) -> list[Any]:
    out: list[Any] = []
    for result in reversed(runtime.plugins.hook.crm_api_resources()):
        out.extend(result if isinstance(result, (list, tuple)) else [result])
    return out
