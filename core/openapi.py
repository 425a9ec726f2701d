"""The OpenAPI 3.1 document of every installed resource."""

from __future__ import annotations

from typing import Any

from piccolo.columns import (
    JSON,
    BigInt,
    Boolean,
    Date,
    Decimal,
    ForeignKey,
    Integer,
    Numeric,
    Serial,
    Timestamptz,
)

from core.api import Resource

ERROR = {"$ref": "#/components/schemas/Error"}


def _type(column: Any) -> dict[str, Any]:
    if isinstance(column, (Integer, BigInt, Serial, ForeignKey)):
        return {"type": "integer"}
    if isinstance(column, Boolean):
        return {"type": "boolean"}
    if isinstance(column, (Decimal, Numeric)):
        return {"type": "string", "format": "decimal"}
    if isinstance(column, Date):
        return {"type": "string", "format": "date"}
    if isinstance(column, Timestamptz):
        return {"type": "string", "format": "date-time"}
    if isinstance(column, JSON):
        return {}
    return {"type": "string"}


def _schema(res: Resource) -> dict[str, Any]:
    props = {"id": {"type": "integer"}}
    for name in res.fields:
        props[name] = _type(res.table._meta.get_column_by_name(name))
    return {"type": "object", "properties": props}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for c in codes}


def document(resources: list[Resource]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": {"type": "object", "properties": {"error": {
        "type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                         "fields": {"type": "object"}}}}}}
    for res in resources:
        name = res.model.replace(".", "_")
        schemas[name] = _schema(res)
        ref = {"$ref": f"#/components/schemas/{name}"}
        body = {"content": {"application/json": {"schema": ref}}}
        idem = [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}]
        base = "/api" + res.path
        params = [{"name": f, "in": "query", "required": False, "schema": {"type": "string"}} for f in res.filters]
        params += [{"name": "after", "in": "query", "schema": {"type": "string"}},
                   {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
                   {"name": "sort", "in": "query", "schema": {"type": "string", "enum": [
                       *res.sortable, *[f"-{s}" for s in res.sortable]]}}]
        paths[base] = {
            "get": {"summary": f"List {res.model}", "parameters": params, "responses": {
                "200": {"description": "a page", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"items": {"type": "array", "items": ref},
                                                     "next": {"type": ["string", "null"]}}}}}},
                **_errors(401, 403, 422)}},
            "post": {"summary": f"Create {res.model}", "parameters": idem, "requestBody": body,
                     "responses": {"201": {"description": "created", **body}, **_errors(401, 403, 409, 422)}},
        }
        item = base + "/{id}"
        pid = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
        paths[item] = {
            "get": {"parameters": pid, "responses": {"200": {"description": "the record", **body},
                                                     **_errors(401, 403, 404)}},
            "patch": {"parameters": pid + idem, "requestBody": body,
                      "responses": {"200": {"description": "updated", **body}, **_errors(401, 403, 404, 409, 422)}},
            "delete": {"parameters": pid + idem, "responses": {"204": {"description": "deleted"},
                                                               **_errors(401, 403, 404)}},
        }
        for action in res.actions:
            paths[f"{item}/{action}"] = {"post": {"summary": f"{action} {res.model}", "parameters": pid + idem,
                                                  "responses": {"200": {"description": "done"},
                                                                **_errors(401, 403, 404, 409, 422)}}}
    return {"openapi": "3.1.0", "info": {"title": "CRM API", "version": "1"}, "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}]}
