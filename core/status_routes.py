"""Admin pages of the system status and of background work that failed for good."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import outbox, status
from core.errors import PermissionDenied, ValidationError
from core.i18n import N_
from core.security import audit
from core.web import render, require_user


def _admin(request: Request) -> None:
    if not require_user(request).is_admin:
        raise PermissionDenied(N_("administrators only"))


async def status_page(request: Request) -> Response:
    _admin(request)
    found = await status.report()
    return await render(request, "core/admin_status.html", report=found)


async def jobs_page(request: Request) -> Response:
    _admin(request)
    return await render(request, "core/admin_jobs.html", rows=await outbox.failed(200))


async def jobs_retry(request: Request) -> Response:
    """Re-drive one failed job (``id``) or all of them; audited."""
    _admin(request)
    form = await request.form()
    raw = str(form.get("id", ""))
    if raw and not (raw.isdigit() and len(raw) < 19):
        raise ValidationError({"id": N_("must be a job id")})
    count = await outbox.retry([int(raw)] if raw else None)
    await audit.record("jobs_retry", model="core.outbox", record_id=raw or "all", detail=f"{count} job(s)")
    return RedirectResponse("/admin/jobs", status_code=303)


ROUTES = [
    Route("/admin/status", status_page, methods=["GET"], name="admin_status"),
    Route("/admin/jobs", jobs_page, methods=["GET"], name="admin_jobs"),
    Route("/admin/jobs/retry", jobs_retry, methods=["POST"], name="admin_jobs_retry"),
]
