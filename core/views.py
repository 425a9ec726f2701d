"""The kernel's own pages: home (dashboard), login, logout, language, health."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core import dashboard, hooks
from core.i18n import N_
from core.runtime import current
from core.security import audit, passwords, sessions, users
from core.security.access import Access
from core.security.middleware import SESSION_COOKIE
from core.security.models import User
from core.web import principal, render, require_user


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


async def home(request: Request) -> Response:
    who = principal(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    acc = Access(who)
    widgets = [*await dashboard.widgets(acc), *await hooks.call("crm_dashboard_widgets", access=acc)]
    return await render(request, "core/home.html", widgets=sorted(widgets, key=lambda w: w.order))


async def login_form(request: Request) -> Response:
    return await render(request, "core/login.html", error="", login="",
                  next=_safe_next(request.query_params.get("next", "/")))


async def login(request: Request) -> Response:
    form = await request.form()
    login_name = str(form.get("login", "")).strip()[:150]
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    settings = current().settings
    ip = request.client.host if request.client else ""
    keys = (f"login:{login_name.lower()}", f"ip:{ip}")
    # the attempt is counted before the password is checked, so parallel guesses cannot share one count
    attempt, over = await sessions.reserve_attempt(keys, limit=settings.login_max_failures,
                                                   window_seconds=settings.login_window_seconds)
    if over is not None:
        await audit.record("login_throttled", login=login_name, detail=over)
        return await render(request, "core/login.html", status=429, login=login_name, next=target,
                            error=N_("Too many failed attempts. Try again later."))
    user = await User.select(User.id, User.password_hash, User.is_active).where(
        User.login == login_name).first()
    # always one argon2 check (a dummy hash for an unknown login): the time taken does not tell; in a
    # thread, so a ~0.25 s hash does not hold up every other request of this process
    matches = await run_in_threadpool(passwords.verify, user["password_hash"] if user else "", password)
    if user is None or not user["is_active"] or not matches:
        await audit.record("login_failed", login=login_name)
        return await render(request, "core/login.html", status=401, login=login_name, next=target,
                            error=N_("Wrong login or password."))
    await sessions.release_attempt(attempt)
    await sessions.clear_failures(keys[0])
    token, _ = await sessions.open_session(user["id"], ip=ip, user_agent=request.headers.get("user-agent", ""))
    await users.adopt_language(user["id"], request.headers.get("accept-language"), settings.default_language)
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
