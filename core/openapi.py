"""The OpenAPI 3.1 document of every installed resource: the truth about the API, checked by schemathesis.

Built from the same declarations the API runs on (``core.api.Resource`` and the table columns), so the two
cannot drift: separate read and write schemas (a response shows read-only fields such as ``id``, ``version``
or ``created_at``; a request may send only the writable ones and gets a 422 for any other), RFC 3339 times,
nullability from the column, integer ranges and string lengths as :mod:`core.values` enforces them, the page
size limit, and links from a created record to the operations on it (stateful testing follows them).
"""

from __future__ import annotations

from typing import Any

from piccolo.columns import JSON, Boolean, Date, Numeric, Real, Text, Timestamp, Timestamptz
from piccolo.columns.base import Column

from core import values
from core.api import MAX_LIMIT, MAX_QUERY, Resource
from core.customfields.records import schema as custom_schema
from core.customfields.registry import definitions as custom_definitions
from core.limits import MAX_TEXT

JSON_TYPE = "application/json"
ERROR = {"$ref": "#/components/schemas/Error"}
#: text a database can store (no NUL); the API refuses the rest with a 422
_STORABLE = "^[^\\u0000]*$"
#: the same, with at least one visible character (a required field: blank is refused like missing)
_FILLED = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
_ID = {"type": "integer", "minimum": 1, "maximum": values.INT32[1]}
#: schema pieces for addons' ``Resource.field_schemas`` and ``action_bodies``
ID = _ID
NON_BLANK = {"type": "string", "minLength": 1, "pattern": _FILLED}


def decimal_text(whole: int = 10, scale: int = 2, *, negative: bool = False) -> dict[str, Any]:
    """A decimal sent as text (``"12.50"``): at most ``whole`` digits before the point and ``scale`` after."""
    fraction = f"(\\.[0-9]{{1,{scale}}})?" if scale else ""
    return {"type": "string", "pattern": f"^{'-?' if negative else ''}[0-9]{{1,{whole}}}{fraction}$"}


def _nullable(schema: dict[str, Any], column: Column) -> dict[str, Any]:
    if column._meta.null and "type" in schema:
        return {**schema, "type": [schema["type"], "null"]}
    return schema


def _decimal_pattern(column: Column) -> str:
    whole = values.decimal_bound(column)
    digits = getattr(column, "digits", None)
    scale = int(digits[1]) if digits else 10
    whole_part = f"[0-9]{{1,{whole}}}" if whole else "[0-9]{1,20}"
    fraction = f"(\\.[0-9]{{1,{scale}}})?" if scale else ""
    return f"^-?{whole_part}{fraction}$"


def column_schema(column: Column, *, write: bool = False) -> dict[str, Any]:
    """The JSON Schema of one column's value as the API shows it (``write=False``) or accepts it."""
    bounds = values.int_range(column)
    schema: dict[str, Any]
    if bounds is not None:
        schema = {"type": "integer", "minimum": bounds[0], "maximum": bounds[1],
                  "format": "int64" if bounds[1] == values.INT64[1] else "int32"}
    elif isinstance(column, Boolean):
        schema = {"type": "boolean"}
    elif isinstance(column, Numeric):
        schema = {"type": "string", "format": "decimal"}
        if write:
            schema = {"type": "string", "pattern": _decimal_pattern(column)}
    elif isinstance(column, Real):
        schema = {"type": "number"}
    elif isinstance(column, (Timestamptz, Timestamp)):
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(column, Date):
        schema = {"type": "string", "format": "date"}
    elif isinstance(column, JSON):
        if column._meta.null or not write:
            return {}
        return {"type": ["object", "array", "string", "number", "boolean"]}  # any JSON but null
    else:
        schema = {"type": "string"}
        if write:
            schema["pattern"] = _STORABLE
            limit = values.max_length(column)
            if limit:
                schema["maxLength"] = limit
            elif isinstance(column, Text):
                schema["maxLength"] = MAX_TEXT
    return _nullable(schema, column)


def _column(res: Resource, name: str) -> Column | None:
    try:
        return res.table._meta.get_column_by_name(name)
    except ValueError:
        return None


def read_schema(res: Resource) -> dict[str, Any]:
    """A record as the API returns it. Only ``id`` is required: a role may have fields hidden (key absent)."""
    props: dict[str, Any] = {"id": _ID}
    for name in res.fields:
        column = _column(res, name)
        props[name] = column_schema(column) if column is not None else {}
        if name == res.custom:
            props[name] = custom_schema(res.model)
    return {"type": "object", "properties": props, "required": ["id"], "additionalProperties": False}


def write_schema(res: Resource, *, update: bool) -> dict[str, Any]:
    """What a create (or, with ``update``, a PATCH) may send: the writable fields only, nothing read-only."""
    props: dict[str, Any] = {}
    for name in res.writable:
        column = _column(res, name)
        schema = column_schema(column, write=True) if column is not None else {}
        if name in res.required:  # blank or null is refused like missing, on create and update
            if schema.get("pattern") == _STORABLE:
                schema = {**schema, "pattern": _FILLED, "minLength": 1}
            if isinstance(schema.get("type"), list):
                schema = {**schema, "type": schema["type"][0]}
        props[name] = {**schema, **res.field_schemas.get(name, {})}
        if name == res.custom:
            props[name] = custom_schema(res.model, write=True, update=update)
    required = [] if update else [f for f in res.required if f in props]
    if not update and res.custom in props and props[res.custom].get("required"):
        required.append(res.custom)
    if update and _column(res, "version") is not None:
        props["version"] = {"type": "integer", "minimum": 1, "maximum": values.INT32[1],
                            "description": "the version you read: 409 if the record changed since"}
        required = ["version"]
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def _query_schema(column: Column) -> dict[str, Any]:
    schema = column_schema(column, write=True)
    if isinstance(schema.get("type"), list):
        schema = {**schema, "type": schema["type"][0]}
    return schema or {"type": "string"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": _REASONS[c], "content": {JSON_TYPE: {"schema": ERROR}}} for c in codes}


_REASONS = {401: "no valid API token", 403: "not allowed", 404: "no such record (or out of your scope)",
            405: "method not allowed", 409: "conflict (stale version, record in use, duplicate, "
                                            "Idempotency-Key reused)", 422: "invalid input: the fields say why"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_TYPE: {"schema": schema}}}


def _names(resources: list[Resource]) -> dict[str, str]:
    """Schema names: the model (``crm_sales_product``) when one resource has it, else from the path."""
    models = [r.model for r in resources]
    return {r.path: (r.model if models.count(r.model) == 1 else r.path.strip("/")).replace(".", "_").replace(
        "/", "_").replace("-", "_") for r in resources}


IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "description": "same key and body: the first answer is replayed; another body: 409",
               "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"}}
IF_MATCH = {"name": "If-Match", "in": "header", "required": False,
            "description": "the ETag of the version you read (instead of ``version`` in the body)",
            "schema": {"type": "string", "pattern": '^(W/)?"?[0-9]{1,9}"?$'}}
PATH_ID = {"name": "id", "in": "path", "required": True, "schema": _ID}


def _paths(res: Resource, name: str) -> dict[str, Any]:
    read = {"$ref": f"#/components/schemas/{name}"}
    base = "/api" + res.path
    item = base + "/{id}"
    on_record = {"id": "$response.body#/id"}
    links = {"read": {"operationId": f"read_{name}", "parameters": on_record}}
    if res.writable:
        links["update"] = {"operationId": f"update_{name}", "parameters": on_record}
    links["delete"] = {"operationId": f"delete_{name}", "parameters": on_record}
    for action in res.actions:
        links[action] = {"operationId": f"{action}_{name}", "parameters": on_record}

    params: list[dict[str, Any]] = []
    for field in res.filters:
        column = _column(res, field)
        params.append({"name": field, "in": "query", "required": False,
                       "schema": _query_schema(column) if column is not None else {"type": "string"}})
    for fd in custom_definitions(res.model) if res.custom else []:
        if fd.is_filterable:
            params.append({"name": fd.param, "in": "query", "required": False, "schema": {"type": "string"},
                           "description": f"custom field {fd.name}: equal to (several choices: holds) this value"})
    if res.search is not None:
        params.append({"name": "q", "in": "query", "required": False,
                       "schema": {"type": "string", "maxLength": MAX_QUERY},
                       "description": "words to search for (every word must match)" + (
                           f"; only the newest {res.search_window} matches are read (filters, rights and the sort "
                           "apply to those): a spent window's last page gives ``q_older``" if res.search_window
                           else "")})
    if res.search is not None and res.search_window:
        params.append({"name": "q_before", "in": "query", "required": False,
                       "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
                       "description": "with ``q``: search the matches older than this (a page's ``q_older``)"})
    params += [{"name": "after", "in": "query", "required": False,
                "schema": {"type": "string", "minLength": 1, "pattern": "^[A-Za-z0-9_=-]+$"},
                "description": "the ``next`` cursor of the previous page (anything else: 422)"},
               {"name": "limit", "in": "query", "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}},
               {"name": "sort", "in": "query", "required": False,
                "schema": {"type": "string", "enum": [*res.sortable, *[f"-{s}" for s in res.sortable]]}}]
    page_props: dict[str, Any] = {"items": {"type": "array", "items": read}, "next": {"type": ["string", "null"]}}
    if res.search is not None and res.search_window:
        page_props["q_older"] = {
            "type": ["integer", "null"], "description": "older matches of ``q`` remain: send this as ``q_before`` "
            "to search them (only on a window's last page)"}
    page = {"type": "object", "required": list(page_props), "additionalProperties": False, "properties": page_props}
    collection: dict[str, Any] = {"get": {
        "operationId": f"list_{name}", "summary": f"List {res.summary or res.model}", "parameters": params,
        "responses": {"200": _json_body(page, "a page"), **_errors(401, 403, 422)}}}
    if res.writable:
        collection["post"] = {
            "operationId": f"create_{name}", "summary": f"Create {res.model}", "parameters": [IDEMPOTENCY],
            "requestBody": {"required": True, "content": {JSON_TYPE: {"schema": {
                "$ref": f"#/components/schemas/{name}_create"}}}},
            "responses": {"201": {**_json_body(read, "created"), "links": links},
                          **_errors(401, 403, 404, 409, 422)}}
    etag = {"ETag": {"description": "the version, for If-Match", "schema": {"type": "string"}}}
    record: dict[str, Any] = {
        "get": {"operationId": f"read_{name}", "parameters": [PATH_ID],
                "responses": {"200": {**_json_body(read, "the record"), "headers": etag},
                              **_errors(401, 403, 404, 422)}},
        "delete": {"operationId": f"delete_{name}", "parameters": [PATH_ID, IDEMPOTENCY],
                   "responses": {"204": {"description": "deleted (or archived)"},
                                 **_errors(401, 403, 404, 409, 422)}},
    }
    if res.writable:
        record["patch"] = {
            "operationId": f"update_{name}", "parameters": [PATH_ID, IDEMPOTENCY, IF_MATCH],
            "requestBody": {"required": True, "content": {JSON_TYPE: {"schema": {
                "$ref": f"#/components/schemas/{name}_update"}}}},
            "responses": {"200": {**_json_body(read, "updated"), "headers": etag},
                          **_errors(401, 403, 404, 409, 422)}}
    out = {base: collection, item: record}
    for action in res.actions:
        operation: dict[str, Any] = {
            "operationId": f"{action}_{name}", "summary": f"{action} {res.model}",
            "parameters": [PATH_ID, IDEMPOTENCY],
            "responses": {"200": _json_body({}, "done"), **_errors(401, 403, 404, 409, 422)}}
        body = res.action_bodies.get(action)
        if body is not None:
            operation["requestBody"] = {"required": True, "content": {JSON_TYPE: {"schema": body}}}
        out[f"{item}/{action}"] = {"post": operation}
    for sub_name, coll in res.collections.items():
        paged = {"type": "object", "required": ["items", "next"], "additionalProperties": False,
                 "properties": {"items": {"type": "array", "items": coll.item}, "next": {"type": ["string", "null"]}}}
        nested: dict[str, Any] = {"get": {
            "operationId": f"list_{name}_{sub_name}", "summary": coll.summary or f"{sub_name} of a {res.model}",
            "parameters": [PATH_ID, *coll.params, {"name": "after", "in": "query", "required": False,
                                                   "schema": {"type": "string", "minLength": 1}},
                           {"name": "limit", "in": "query", "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50}}],
            "responses": {"200": _json_body(paged, "a page"), **_errors(401, 403, 404, 422)}}}
        if coll.create is not None:
            nested["post"] = {
                "operationId": f"create_{name}_{sub_name}", "summary": f"Add to the {sub_name} of a {res.model}",
                "parameters": [PATH_ID, IDEMPOTENCY],
                "requestBody": {"required": True, "content": {JSON_TYPE: {"schema": coll.create_body or {}}}},
                "responses": {"201": _json_body(coll.item, "created"), **_errors(401, 403, 404, 409, 422)}}
        out[f"{item}/{sub_name}"] = nested
    out[f"{item}/reveal/{{field}}"] = {"post": {
        "operationId": f"reveal_{name}", "summary": f"One masked field of a {res.model} in clear (audited)",
        "parameters": [PATH_ID, {"name": "field", "in": "path", "required": True,
                                 "schema": {"type": "string", "enum": list(res.fields)}}],
        "responses": {"200": _json_body({"type": "object", "required": ["field", "value"],
                                         "properties": {"field": {"type": "string"}, "value": {}}}, "the value"),
                      **_errors(401, 403, 404, 422)}}}
    return out


def document(resources: list[Resource]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": {
        "type": "object", "required": ["error"], "additionalProperties": False, "properties": {"error": {
            "type": "object", "required": ["code", "message", "fields"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "fields": {"type": "object", "description": "what is wrong, by field name",
                           "additionalProperties": {"type": "string"}}}}}}}
    names = _names(resources)
    for res in resources:
        name = names[res.path]
        schemas[name] = read_schema(res)
        if res.writable:
            schemas[f"{name}_create"] = write_schema(res, update=False)
            schemas[f"{name}_update"] = write_schema(res, update=True)
        paths.update(_paths(res, name))
    return {"openapi": "3.1.0", "info": {"title": "CRM API", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]}
