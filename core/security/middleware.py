"""Pure ASGI security middleware: request id, authentication, language, CSRF, security headers.

No ``BaseHTTPMiddleware`` (it costs ~5× throughput here). The body of an unsafe form request is buffered
once to read its CSRF field and then replayed to the app unchanged. Every request body is capped at
``max_body_bytes`` (``CRM_MAX_REQUEST_MB``), file parts included: past it the answer is 413, whether the
middleware or the endpoint was reading it; a form body that cannot be parsed (a multipart request without a
boundary…) is a 400 naming the problem.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import uuid
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import db, i18n
from core.errors import BadRequest, TooLarge
from core.security import access, audit, context, principal, sessions

SESSION_COOKIE = "crm_session"
PRELOGIN_COOKIE = "crm_csrf"
#: ``/<mount>/public/…``: signed-link endpoints (a route named ``public_…``) whose URL token is the credential, never
#: the session; they take unsafe requests without a CSRF token, as mail clients send RFC 8058 one-click POSTs
#: without cookies (docs/security.md). Because no CSRF token guards them, the session cookie is not even read
#: there: a page elsewhere could make a signed-in user's browser POST to them, so they must never see a user.
SIGNED_PUBLIC = re.compile(r"^/[a-z0-9_-]+/public/")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_FIELD_BYTES = 1024 * 1024  # a form field that is not a file (Starlette's own default)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"),
]


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, *, idle_minutes: int, absolute_hours: int, default_language: str,
                 csrf_exempt: tuple[str, ...] = (), secure_cookies: bool = False,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.secure_cookies = secure_cookies
        self.idle_minutes = idle_minutes
        self.absolute_hours = absolute_hours
        self.default_language = default_language
        self.csrf_exempt = csrf_exempt
        self.principals = principal.Cache()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        async with db.request_connection():  # one pool connection for the request's queries (PostgreSQL)
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:  # refused before a byte is read
            await _refuse(send, scope, headers, TooLarge(self._too_large()))
            return
        receive = _limited(receive, self.max_body_bytes, self._too_large())
        state = scope.setdefault("state", {})
        request_id = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        ip = (scope.get("client") or ("", 0))[0]
        cookies = _cookies(headers)
        context.set_context(context.RequestContext(ip=ip, request_id=request_id))
        signed_public = SIGNED_PUBLIC.match(scope["path"]) is not None
        who, info, via_bearer = (None, None, False) if signed_public else await self._authenticate(
            headers, cookies, scope["path"])
        state.update(principal=who, session=info, request_id=request_id,
                     csrf_token=info.csrf_token if info else cookies.get(PRELOGIN_COOKIE, ""))
        context.set_context(context.RequestContext(principal=who, ip=ip, request_id=request_id))
        i18n.set_language(who.language if who and who.language else
                          i18n.negotiate(headers.get("accept-language"), self.default_language))
        new_prelogin = ""
        if not info and not cookies.get(PRELOGIN_COOKIE):
            new_prelogin = secrets.token_urlsafe(32)
            state["csrf_token"] = new_prelogin
        # A token-less, session-less API call has no credentials to protect: it goes on to a JSON 401.
        anonymous_api = scope["path"].startswith("/api/") and info is None
        if (scope["method"] in UNSAFE and not via_bearer and not anonymous_api
                and not scope["path"].startswith(self.csrf_exempt) and not signed_public):
            try:
                receive, token = await _csrf_token(scope, receive, headers)
            except (TooLarge, BadRequest) as exc:
                await _refuse(send, scope, headers, exc)
                return
            expected = state["csrf_token"]
            if not expected or not token or not hmac.compare_digest(token, expected):
                await audit.record("csrf_failed", detail=f"CSRF check failed on {scope['method']} {scope['path']}")
                await _plain(send, 403, "CSRF check failed: reload the page and try again")
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(message.get("headers", [])) + SECURITY_HEADERS
                extra.append((b"x-request-id", request_id.encode()))
                sets_session = any(k == b"set-cookie" and v.startswith(SESSION_COOKIE.encode() + b"=")
                                   for k, v in extra)
                # (a signed link left the session unread, not refused: it stays for the user's other tabs)
                if (cookies.get(SESSION_COOKIE) and info is None and not via_bearer and not sets_session
                        and not signed_public):
                    extra.append((b"set-cookie", f'{SESSION_COOKIE}=""; Path=/; Max-Age=0; HttpOnly; '
                                                 f"SameSite=Lax".encode()))
                if new_prelogin:
                    secure = "; Secure" if self.secure_cookies else ""
                    extra.append((b"set-cookie", f"{PRELOGIN_COOKIE}={new_prelogin}; Path=/; HttpOnly; "
                                                 f"SameSite=Lax{secure}".encode()))
                message = {**message, "headers": extra}
            await send(message)

        held = audit.collecting()
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            await audit.flush(held)

    def _too_large(self) -> str:
        return f"The request is larger than the {self.max_body_bytes // (1024 * 1024)} MB this server accepts."

    async def _authenticate(self, headers: Headers, cookies: dict[str, str], path: str) -> tuple[
            principal.Principal | None, sessions.SessionInfo | None, bool]:
        """(principal, session, via_bearer). Bearer tokens count on ``/api/`` only: a page never trusts one,
        so page forms always need their CSRF token. Unknown tokens and session ids are audited."""
        implied = access.policy().implied
        auth = headers.get("authorization", "")
        if path.startswith("/api/") and auth.lower().startswith("bearer "):
            secret = auth[7:].strip()
            found = await sessions.resolve_token(secret)
            if found is None:
                await audit.record("auth_failed", detail=f"unknown, expired or revoked API token {secret[:12]!r}")
                return None, None, True
            who = await self.principals.get(found.user_id, found.generation, roles_subset=found.roles,
                                         via_token=True, implied=implied)
            return who, None, True
        token = cookies.get(SESSION_COOKIE, "")
        if not token:
            return None, None, False
        info = await sessions.resolve(token, idle_minutes=self.idle_minutes, absolute_hours=self.absolute_hours)
        who = await self.principals.get(info.user_id, info.generation, implied=implied) if info else None
        if info is None or who is None:
            await audit.record("auth_failed", detail="unknown, expired or revoked session")
            return None, None, False
        return who, info, False


def _cookies(headers: Headers) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is treated as no cookies
        return {}
    return {k: v.value for k, v in jar.items()}


async def _csrf_token(scope: Scope, receive: Receive, headers: Headers) -> tuple[Receive, str]:
    """The CSRF token from the header or the form body; returns a receive that replays the body."""
    token = headers.get("x-csrf-token", "")
    if token:
        return receive, token
    ctype = headers.get("content-type", "")
    if not ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return receive, ""
    chunks: list[bytes] = []
    more = True
    while more:  # ``receive`` is capped (_limited): past the limit it raises TooLarge
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)

    def replay_factory() -> Receive:
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    if ctype.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("latin-1"), keep_blank_values=True)
        found = values.get("csrf_token", [""])[0]
    else:
        # without "app" in its scope Starlette raises the parser's own error (else an HTTPException that
        # would escape every handler out here, as a 500)
        try:
            form = await Request({k: v for k, v in scope.items() if k != "app"}, replay_factory()).form(
                max_part_size=MAX_FIELD_BYTES)
        except MultiPartException as exc:
            if exc.message.startswith("Part exceeded"):
                raise TooLarge(f"A form field is larger than the {MAX_FIELD_BYTES // 1024} KB allowed.") from None
            raise BadRequest(f"The form could not be read: {exc.message}") from None
        value: Any = form.get("csrf_token", "")
        found = value if isinstance(value, str) else ""
        await form.close()
    return replay_factory(), found


def _limited(receive: Receive, limit: int, message: str) -> Receive:
    """``receive`` that raises TooLarge once the body passes ``limit`` bytes (a chunked or lying request);
    inside an endpoint the kernel's error handler turns it into a 413 like any other CrmError."""
    seen = 0

    async def limited() -> Message:
        nonlocal seen
        got = await receive()
        if got["type"] == "http.request":
            seen += len(got.get("body", b""))
            if seen > limit:
                raise TooLarge(message)
        return got

    return limited


async def _refuse(send: Send, scope: Scope, headers: Headers, exc: TooLarge | BadRequest) -> None:
    """An error answered by the middleware itself: JSON for the API (the kernel's error shape), else a page."""
    if scope["path"].startswith("/api/") or "application/json" in headers.get("accept", ""):
        body = json.dumps({"error": {"code": exc.code, "message": exc.message, "fields": {}}}).encode()
        ctype = b"application/json"
    else:
        text = exc.message.replace("&", "&amp;").replace("<", "&lt;")
        body = (f'<!doctype html><html><head><meta charset="utf-8"><title>{exc.status}</title></head>'
                f"<body><h1>{text}</h1></body></html>").encode()
        ctype = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": exc.status,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})
