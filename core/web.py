"""Helpers for addon views: the current user, access, rendering pages with the shared layout."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from core import hooks, i18n, notifications
from core import status as system_status
from core.errors import NotAuthenticated, ValidationError
from core.i18n import N_
from core.runtime import current
from core.security.access import Access, policy
from core.security.principal import Principal


def principal(request: Request) -> Principal | None:
    found: Principal | None = request.scope.get("state", {}).get("principal")
    return found


def require_user(request: Request) -> Principal:
    who = principal(request)
    if who is None:
        raise NotAuthenticated(N_("please log in"))
    return who


def access(request: Request) -> Access:
    return Access(require_user(request))


async def menus(request: Request) -> list[dict[str, Any]]:
    """The manifests' menus the user may open, plus what ``crm_menu_items`` adds for this user."""
    who = principal(request)
    if who is None:
        return []
    acc = Access(who)
    items = []
    for addon in current().addons:
        section = i18n.gettext(addon.title)
        for menu in addon.menus:
            if menu.model is None or acc.can(menu.model, "read"):
                items.append({"label": i18n.gettext(menu.label), "path": menu.path, "order": menu.order,
                              "section": section})
    for menu in await hooks.call("crm_menu_items", access=acc):
        items.append({"label": menu.label, "path": menu.path, "order": menu.order, "section": ""})
    resources = request.app.state.runtime.state.get("api_resources", []) if hasattr(request.app.state, "runtime") \
        else []
    system = i18n.gettext("System")
    if any(res.settings and acc.can(res.model, "read") for res in resources):
        items.append({"label": i18n.gettext("Settings"), "path": "/settings", "order": 800, "section": system})
    if who.is_admin:
        items.append({"label": i18n.gettext("Admin"), "path": "/admin/users", "order": 900, "section": system})
        items.append({"label": i18n.gettext("System status"), "path": "/admin/status", "order": 910,
                      "section": system})
    elif policy().scope(who.roles, "core.audit_log", "read"):
        items.append({"label": i18n.gettext("Audit log"), "path": "/admin/audit", "order": 900, "section": system})
    return sorted(items, key=lambda m: (m["order"], m["label"]))


def menu_sections(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Menu entries grouped by section (the addon that declared them), sections in the order of their first
    entry; entries a hook added without a section join the first one."""
    sections: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        key = item["section"] or (next(iter(sections)) if sections else "")
        sections.setdefault(key, []).append(item)
    return [{"label": label, "items": entries} for label, entries in sections.items()]


async def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` inside the shared layout (menus, user, CSRF token) as an HTML response."""
    env = request.app.state.templates
    state = request.scope.get("state", {})
    items = await menus(request)
    who = principal(request)
    unread = await notifications.unread_count(who.user_id) if who else 0
    banners = await system_status.notices(request.url.path) if who else []
    html = env.get_template(template).render(
        request=request, user=who, menus=items, menu_sections=menu_sections(items), unread_notifications=unread,
        status_banners=banners,
        csrf_token=state.get("csrf_token", ""), url_for=request.url_for, path=request.url.path,
        **context)
    return HTMLResponse(html, status_code=status)


def form_str(form: Any, name: str, *, required: bool = False, max_length: int = 500) -> str:
    value = form.get(name, "")
    value = value.strip() if isinstance(value, str) else ""
    if required and not value:
        raise ValidationError({name: N_("is required")})
    if len(value) > max_length:
        raise ValidationError({name: N_("is longer than %(limit)s characters") % {"limit": max_length}})
    return value


async def pdf_response(request: Request, template: str, filename: str, **context: Any) -> Response:
    """Render ``template`` to a PDF (off the event loop) and send it inline."""
    from core.reports import CJK_FONT_STACK, render_pdf_async
    from core.templating import static_dirs

    html = request.app.state.templates.get_template(template).render(
        CJK_FONT_STACK=CJK_FONT_STACK, user=principal(request), **context)
    pdf = await render_pdf_async(html, assets=static_dirs(current().addons))
    safe = "".join(c for c in filename if c.isalnum() or c in "-_.") or "document.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{safe}"'})
