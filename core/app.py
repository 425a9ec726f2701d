"""``create_app``: one Starlette app from the installed addons of one database.

The app boots in its lifespan (engine, broker, addons) and then adds routes, so ``uvicorn --factory`` with
N workers works: every worker builds the same app from the database, and holds no state of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from core import api, jobs, loader, scheduler, templating
from core.approvals.routes import ROUTES as APPROVAL_ROUTES
from core.automation.routes import ROUTES as AUTOMATION_ROUTES
from core.customfields.routes import ROUTES as CUSTOM_FIELD_ROUTES
from core.errors import Conflict, CrmError, NotAuthenticated, ValidationError
from core.forms import ROUTES as SETTINGS_ROUTES
from core.notification_routes import ROUTES as NOTIFICATION_ROUTES
from core.runtime import Runtime, boot
from core.search import ROUTES as SEARCH_ROUTES
from core.security.admin import ROUTES as ADMIN_ROUTES
from core.security.middleware import SecurityMiddleware
from core.settings import Settings
from core.status_routes import ROUTES as STATUS_ROUTES
from core.timeline.routes import ROUTES as TIMELINE_ROUTES
from core.views import ROUTES as KERNEL_ROUTES
from core.webhooks.routes import ROUTES as WEBHOOK_ROUTES

log = logging.getLogger("crm.app")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


_DATABASE_REFUSALS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError,
                                                    asyncpg.DataError)


def _refused_by_database(exc: Exception) -> CrmError | None:
    """A constraint the database enforced (unique, foreign key, not null) as a 409 naming the column when the
    driver says which, a value it could not store as a 422: the API checks values before writing (core.values),
    this is the net for races and what is left."""
    if isinstance(exc, asyncpg.DataError):  # e.g. a computed total past its numeric column
        return ValidationError({"body": f"a value does not fit its column: {exc}"})
    if not isinstance(exc, _DATABASE_REFUSALS):
        return None
    text = f"{exc} {getattr(exc, 'detail', '') or ''}"
    found = re.search(r"Key \((\w+)\)|failed: \w+\.(\w+)", text)
    field = (found.group(1) or found.group(2)) if found else None
    reason = "already exists" if "unique" in text.lower() else "conflicts with other records"
    return Conflict(f"{field or 'the record'} {reason}", field=field)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Routing answers (404 no such path, 405 method) as the JSON error body on the API, plain text elsewhere."""
    assert isinstance(exc, HTTPException)
    if not _wants_json(request):
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return JSONResponse({"error": {"code": code, "message": exc.detail, "fields": {}}},
                        status_code=exc.status_code, headers=exc.headers)


async def on_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, CrmError):
        refused = _refused_by_database(exc)
        if refused is None:
            log.exception("unhandled error on %s %s", request.method, request.url.path)
        exc = refused or CrmError("Something went wrong on our side; it has been logged.")
    fields = exc.fields if isinstance(exc, ValidationError) else {}
    field = getattr(exc, "field", None)
    if field:
        fields = {field: exc.message}
    if _wants_json(request):
        return JSONResponse({"error": {"code": exc.code, "message": exc.message, "fields": fields}},
                            status_code=exc.status)
    if isinstance(exc, NotAuthenticated):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    from core.web import render

    return await render(request, "core/error.html", status=exc.status, message=exc.message, fields=fields)


def addon_routes(runtime: Runtime) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for addon in runtime.addons:
        if addon.routes and addon.mount:
            addon_routes_list = loader.load(addon.routes, addon.name, "routes", default_attr="ROUTES")
            routes.append(Mount(addon.mount, routes=addon_routes_list, name=addon.name))
    for name, folder in templating.static_dirs(runtime.addons).items():
        if folder.is_dir() and name != "core":
            routes.append(Mount(f"/static/{name}", app=StaticFiles(directory=folder), name=f"static_{name}"))
    return routes


def compose(app: Starlette, runtime: Runtime) -> None:
    """Attach what the installed addons contribute to ``app``."""
    app.state.runtime = runtime
    app.state.templates = templating.environment(runtime.addons)
    app.router.routes.extend(addon_routes(runtime))
    app.router.routes.extend(api.routes(runtime))


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing more than asyncpg already does (an open
    transaction rolled back, listeners dropped). Its default reset also runs ``pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`` — one more round trip per request, for session state the CRM never sets (no advisory
    locks, cursors outside transactions, LISTEN or session ``SET``: docs/operations.md, PgBouncer)."""


@contextlib.asynccontextmanager
async def _connection_pool(size: int) -> AsyncIterator[None]:
    """A PostgreSQL pool for a web process: a new connection per query costs more than most list pages.

    In every shape: the pool belongs to the web loop (``core.db.CrmPostgresEngine``), in-process job threads
    (loops of their own) see none and connect per query; a request runs its queries on one pool connection
    (``core.db.request_connection``, taken by the security middleware).
    """
    from piccolo.engine.postgres import PostgresEngine

    from core import db

    engine = db.current()
    if not (size > 0 and isinstance(engine, PostgresEngine)):
        yield
        return
    await engine.start_connection_pool(min_size=min(2, size), max_size=size, reset=_keep_session)
    try:
        yield
    finally:
        await engine.close_connection_pool()


@contextlib.asynccontextmanager
async def _embedded_jobs(runtime: Runtime) -> AsyncIterator[None]:
    """In-process worker threads and scheduler, only when no Redis is configured."""
    if not jobs.is_embedded():
        yield
        return
    worker = jobs.start_worker(runtime.settings.job_threads)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run_forever(runtime.schedules, stop))
    try:
        yield
    finally:
        stop.set()
        await task
        worker.stop()


def freeze_boot_objects() -> None:
    """Leave what booting created (modules, addons, templates, routes: most of a worker's objects) out of every
    later garbage collection. A full collection walked them all: 40 ms of CPU on an idle machine, 300 ms of a
    request's time on a loaded one, once every few dozen requests (bench/service_desk.py). Called once per
    process after it booted (tests, which boot many apps, do not)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               run_jobs: bool = True) -> Starlette:
    """The ASGI app. Pass ``runtime`` to compose at once (tests), else it boots in the lifespan."""
    settings = settings or (runtime.settings if runtime else Settings.from_env())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        rt = runtime or await boot(settings)
        if runtime is None:
            compose(app, rt)
            freeze_boot_objects()
        async with _connection_pool(rt.settings.db_pool_size if runtime is None else 0):
            if run_jobs:
                async with _embedded_jobs(rt):
                    yield {}
            else:
                yield {}

    app = Starlette(
        routes=[*KERNEL_ROUTES, *ADMIN_ROUTES, *CUSTOM_FIELD_ROUTES, *AUTOMATION_ROUTES, *APPROVAL_ROUTES,
                *SETTINGS_ROUTES, *SEARCH_ROUTES, *NOTIFICATION_ROUTES, *STATUS_ROUTES, *WEBHOOK_ROUTES,
                *TIMELINE_ROUTES],
        middleware=[Middleware(SecurityMiddleware, idle_minutes=settings.session_idle_minutes,
                               absolute_hours=settings.session_absolute_hours,
                               default_language=settings.default_language,
                               secure_cookies=settings.secure_cookies,
                               max_body_bytes=settings.max_request_mb * 1024 * 1024)],
        exception_handlers={Exception: on_error, CrmError: on_error, HTTPException: on_http_error,
                            # answered like a CrmError (409/422), not re-raised as a server error
                            **dict.fromkeys(_DATABASE_REFUSALS, on_error)},
        lifespan=lifespan,
    )
    app.router.routes.append(Mount("/static/core", app=StaticFiles(directory=templating.folder("core:static") / "core"),
                                   name="static_core"))
    if runtime is not None:
        compose(app, runtime)
    return app


def factory() -> Starlette:
    """``uvicorn --factory core.app:factory`` entry point."""
    return create_app(Settings.from_env())
