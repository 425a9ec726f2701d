"""The request's security context (principal, IP, request id), visible to services without passing it."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from core.security.principal import Principal


@dataclass(frozen=True)
class RequestContext:
    principal: Principal | None = None
    ip: str = ""
    request_id: str = ""


_EMPTY = RequestContext()
_context: ContextVar[RequestContext] = ContextVar("crm_request_context", default=_EMPTY)  # noqa: B039 (frozen)


def get() -> RequestContext:
    return _context.get()


def set_context(ctx: RequestContext) -> None:
    _context.set(ctx)


def principal() -> Principal | None:
    return _context.get().principal
