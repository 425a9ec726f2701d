"""The kernel's own pages: home (dashboard), login, logout, language, health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core import plugins
from core.runtime import current
from core.security import audit, sessions
from core.security.middleware import SESSION_COOKIE
from core.security.models import User
from core.security.passwords import verify
from core.web import principal, render, require_user


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def home(request: Request) -> Response:
    who = principal(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    widgets = await plugins.collect(current().plugins, "crm_dashboard_widgets", user=who)
    return render(request, "core/home.html", widgets=sorted(widgets, key=lambda w: w.order))


async def login_form(request: Request) -> Response:
    return render(request, "core/login.html", error="", login="",
                  next=_safe_next(request.query_params.get("next", "/")))


async def login(request: Request) -> Response:
    form = await request.form()
    login_name = str(form.get("login", "")).strip()[:150]
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    settings = current().settings
    ip = request.client.host if request.client else ""
    keys = (f"login:{login_name.lower()}", f"ip:{ip}")
    for key in keys:
        if await sessions.too_many_failures(key, limit=settings.login_max_failures,
                                            window_seconds=settings.login_window_seconds):
            await audit.record("login_throttled", login=login_name, detail=key)
            return render(request, "core/login.html", status=429, login=login_name, next=target,
                          error="Too many failed attempts. Try again later.")
    user = await User.select(User.id, User.password_hash, User.is_active).where(
        User.login == login_name).first()
    if user is None or not user["is_active"] or not verify(user["password_hash"] if user else "", password):
        await sessions.note_failure(*keys)
        await audit.record("login_failed", login=login_name)
        return render(request, "core/login.html", status=401, login=login_name, next=target,
                      error="Wrong login or password.")
    await sessions.clear_failures(keys[0])
    token, _ = await sessions.open_session(user["id"], ip=ip, user_agent=request.headers.get("user-agent", ""))
    await audit.record("login", login=login_name, record_id=user["id"], model="core.user")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=settings.secure_cookies,
                        path="/")
    return response


async def logout(request: Request) -> Response:
    require_user(request)
    info = request.scope["state"].get("session")
    if info is not None:
        await sessions.revoke(info.session_id)
        await audit.record("logout", model="core.user", record_id=info.user_id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok", "addons": current().names})


ROUTES = [
    Route("/", home, name="home"),
    Route("/login", login_form, methods=["GET"], name="login"),
    Route("/login", login, methods=["POST"], name="login_post"),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Route("/healthz", health, name="health"),
]
