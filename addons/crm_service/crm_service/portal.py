"""The customer portal: customers (people of crm_contacts with a ``PortalAccount``) sign in, see and open their
own tickets, reply, rate a resolved ticket, search public articles, and see what other addons show them
through ``crm_portal_sections``.

A portal customer is not a kernel user: the portal has its own server-side sessions (cookie ``crm_portal``,
scoped to the portal's path) and its own CSRF token per session, so a portal sign-in never opens a back-office
page and a back-office session never opens the portal. Every query is limited to the customer's person; another
person's ticket is a 404, internal notes are never read. The routes live under ``/service/public/portal`` and are
named ``public_…``: the kernel's login and CSRF layer leaves them to this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core import db
from core.errors import NotFound, PermissionDenied, ValidationError
from core.hooks import PortalCustomer
from core.i18n import N_
from core.portal import act, document, sections
from core.runtime import current as current_runtime
from core.security import audit, sessions
from core.security.passwords import check_policy, hash_password, verify
from core.web import form_str, render
from crm_service import attachments, kb, tickets
from crm_service.models import Attachment, Message, PortalAccount, PortalSession, Ticket

BASE = "/service/public/portal"
COOKIE = "crm_portal"
SESSION_HOURS = 12
INVITE_DAYS = 7
MODEL = "crm_service.portal_account"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Customer:
    account_id: int
    person_id: int
    email: str
    csrf: str


async def invite(person_id: int, email: str) -> str:
    """Create (or renew) the person's portal account and return the one-time link path to set a password; the
    caller mails it (``send_invite``). An earlier link stops working."""
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationError({"email": N_("the customer has no e-mail address")})
    token = secrets.token_urlsafe(32)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=INVITE_DAYS)
    async with db.atomic():
        row = await PortalAccount.select(PortalAccount.id).where(PortalAccount.person == person_id).first()
        if row is None:
            if await PortalAccount.exists().where(PortalAccount.email == email):
                raise ValidationError({"email": N_("another customer uses this e-mail address for the portal")})
            await PortalAccount.insert(PortalAccount(person=person_id, email=email, token_hash=_hash(token),
                                                     token_expires_at=expires))
        else:
            await PortalAccount.update({PortalAccount.token_hash: _hash(token), PortalAccount.token_expires_at: expires,
                                        PortalAccount.is_active: True}).where(PortalAccount.id == row["id"])
        await audit.record("portal_invite", model=MODEL, record_id=person_id, detail=email)
    return f"{BASE}/set-password/{token}"


async def current(request: Request) -> Customer | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    row = await PortalSession.select(PortalSession.account, PortalSession.csrf, PortalSession.expires_at,
                                     PortalSession.account.person, PortalSession.account.email,
                                     PortalSession.account.is_active).where(
        PortalSession.token_hash == _hash(token)).first()
    if row is None or not row["account.is_active"]:
        return None
    expires = row["expires_at"] if row["expires_at"].tzinfo else row["expires_at"].replace(tzinfo=dt.UTC)
    if expires < dt.datetime.now(dt.UTC):
        return None
    return Customer(int(row["account"]), int(row["account.person"]), row["account.email"], row["csrf"])


async def _require(request: Request) -> Customer:
    who = await current(request)
    if who is None:
        raise _SignIn()
    return who


class _SignIn(Exception):
    pass


def _check_csrf(form: Any, expected: str) -> None:
    if not expected or not hmac.compare_digest(str(form.get("csrf_token", "")), expected):
        raise PermissionDenied(N_("the form expired: reload the page and try again"))


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(f"{BASE}{path}", status_code=303)


async def _page(request: Request, template: str, **context: Any) -> Response:
    response = await render(request, template, portal_base=BASE, **context)
    response.headers["cache-control"] = "no-store"
    return response


def _guarded(handler: Any) -> Any:
    async def run(request: Request) -> Response:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except _SignIn:
            return _back("/login")

    run.__name__ = handler.__name__
    return run


async def public_portal_login(request: Request) -> Response:
    if request.method == "GET":
        csrf = secrets.token_urlsafe(16)
        response = await _page(request, "crm_service/portal_login.html", csrf=csrf, failed=False)
        response.set_cookie("crm_portal_csrf", csrf, httponly=True, samesite="strict", path=BASE)
        return response
    form = await request.form()
    _check_csrf(form, request.cookies.get("crm_portal_csrf", ""))
    email = form_str(form, "email", max_length=254).strip().lower()
    password = form_str(form, "password", max_length=200)
    # the back office's throttle (core.security.sessions), keyed apart so customers and staff never lock each other
    settings = current_runtime().settings
    ip = request.client.host if request.client else ""
    keys = (f"portal:{email}", f"portal-ip:{ip}")
    attempt, over = await sessions.reserve_attempt(keys, limit=settings.login_max_failures,
                                                   window_seconds=settings.login_window_seconds)
    if over is not None:
        await audit.record("login_throttled", model=MODEL, detail=over[:200], login=email[:150])
        return await _login_page(request, status=429, throttled=-(-settings.login_window_seconds // 60))
    row = await PortalAccount.select().where((PortalAccount.email == email) & (PortalAccount.is_active == True)).first()  # noqa: E712
    ok = await run_in_threadpool(verify, row["password_hash"] if row else "", password)
    if not ok or row is None:
        await audit.record("portal_login_failed", model=MODEL, detail=email[:200], login=email[:150])
        return await _login_page(request, status=401, failed=True)
    await sessions.release_attempt(attempt)
    await sessions.clear_failures(keys[0])
    return await _start_session(int(row["id"]), email)


async def _login_page(request: Request, *, status: int, failed: bool = False, throttled: int = 0) -> Response:
    csrf = secrets.token_urlsafe(16)
    response = await _page(request, "crm_service/portal_login.html", csrf=csrf, failed=failed, throttled=throttled,
                           status=status)
    response.set_cookie("crm_portal_csrf", csrf, httponly=True, samesite="strict", path=BASE)
    return response


async def public_portal_reset(request: Request) -> Response:
    """Forgotten password: a new link by e-mail when the address has an account; the same answer either way,
    so the form does not tell who is a customer."""
    from core.jobs import enqueue

    form = await request.form()
    _check_csrf(form, request.cookies.get("crm_portal_csrf", ""))
    email = form_str(form, "email", max_length=254).strip().lower()
    row = await PortalAccount.select().where((PortalAccount.email == email) & (PortalAccount.is_active == True)).first()  # noqa: E712
    if row is not None:
        link = await invite(int(row["person"]), email)
        await enqueue("crm_service.send_portal_invite", to=email, path=link, user_id=None)
    csrf = secrets.token_urlsafe(16)
    response = await _page(request, "crm_service/portal_login.html", csrf=csrf, failed=False, reset_sent=True)
    response.set_cookie("crm_portal_csrf", csrf, httponly=True, samesite="strict", path=BASE)
    return response


async def _start_session(account_id: int, email: str) -> Response:
    token = secrets.token_urlsafe(32)
    await PortalSession.insert(PortalSession(token_hash=_hash(token), account=account_id,
                                             csrf=secrets.token_urlsafe(24),
                                             expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=SESSION_HOURS)))
    await audit.record("portal_login", model=MODEL, record_id=account_id, login=email[:150])
    response = _back("/")
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", path=BASE, max_age=SESSION_HOURS * 3600)
    return response


async def public_portal_set_password(request: Request) -> Response:
    token = request.path_params["token"]
    row = await PortalAccount.select().where(PortalAccount.token_hash == _hash(token)).first() if token else None
    expires = row["token_expires_at"] if row else None
    if row is None or expires is None or (expires if expires.tzinfo else expires.replace(tzinfo=dt.UTC)) < \
            dt.datetime.now(dt.UTC):
        raise NotFound(N_("this link has expired: ask for a new one"))
    if request.method == "GET":
        return await _page(request, "crm_service/portal_password.html", token=token, problem="")
    form = await request.form()
    password = form_str(form, "password", required=True, max_length=200)
    try:
        check_policy(password, login=row["email"])
    except ValidationError as exc:
        return await _page(request, "crm_service/portal_password.html", token=token, status=422,
                           problem=str(next(iter(exc.fields.values()), "")))
    await PortalAccount.update({PortalAccount.password_hash: hash_password(password), PortalAccount.token_hash: "",
                                PortalAccount.token_expires_at: None}).where(PortalAccount.id == row["id"])
    await PortalSession.delete().where(PortalSession.account == row["id"])  # a reset signs out everywhere
    await audit.record("portal_password_set", model=MODEL, record_id=row["id"], login=row["email"][:150])
    return await _start_session(int(row["id"]), row["email"])


async def public_portal_logout(request: Request) -> Response:
    who = await _require(request)
    _check_csrf(await request.form(), who.csrf)
    await PortalSession.delete().where(PortalSession.token_hash == _hash(request.cookies.get(COOKIE, "")))
    response = _back("/login")
    response.delete_cookie(COOKIE, path=BASE)
    return response


async def public_portal_home(request: Request) -> Response:
    who = await _require(request)
    q = " ".join(request.query_params.get("q", "").split())[:200]
    found = await kb.public_search(q) if q else []
    shown = await sections(PortalCustomer(person_id=who.person_id, email=who.email))
    return await _page(request, "crm_service/portal_home.html", customer=who, sections=shown, q=q, articles=found,
                       types=tickets.TYPES)


def _shown_files() -> Any:
    """The files a customer sees: their own uploads (with the ticket or a message) and those of the agents'
    replies, never one attached to an internal note."""
    return Attachment.message.is_null() | Attachment.message.kind.is_in(["inbound", "reply"])


async def _own_ticket(who: Customer, ticket_id: int) -> dict[str, Any]:
    row = await Ticket.select().where((Ticket.id == ticket_id) & (Ticket.person == who.person_id)
                                      & (Ticket.is_archived == False)).first()  # noqa: E712
    if row is None:
        raise NotFound(N_("no such ticket"))
    return dict(row)


async def public_portal_ticket(request: Request) -> Response:
    who = await _require(request)
    ticket = await _own_ticket(who, int(request.path_params["id"]))
    # customers read the public conversation only: never an internal note
    messages = await Message.select(Message.kind, Message.body, Message.created_at).where(
        (Message.ticket == ticket["id"]) & Message.kind.is_in(["inbound", "reply"])).order_by(Message.id)
    files = await Attachment.select(Attachment.id, Attachment.filename).where(
        (Attachment.ticket == ticket["id"]) & _shown_files()).order_by(Attachment.id)
    return await _page(request, "crm_service/portal_ticket.html", customer=who, ticket=ticket, messages=messages,
                       files=files,
                       ref=tickets.reference(int(ticket["id"])), state=tickets.STATES[ticket["state"]])


async def read_upload(form: Any, name: str) -> tuple[str, bytes] | None:
    from crm_service.views import read_upload as read

    return await read(form, name)


async def public_portal_ticket_create(request: Request) -> Response:
    who = await _require(request)
    form = await request.form()
    _check_csrf(form, who.csrf)
    kind = form_str(form, "ticket_type") or "question"
    upload = await read_upload(form, "photo")
    if upload:
        attachments.check(*upload)
    async with db.atomic():
        ticket_id = await tickets.create_ticket(None, {
            "subject": form_str(form, "subject", required=True, max_length=300), "person": who.person_id,
            "description": form_str(form, "description", max_length=tickets.MAX_BODY), "channel": "portal",
            "ticket_type": kind if kind in tickets.TYPES else "question", "customer_email": who.email})
        if upload:
            await attachments.add(ticket_id, *upload)
    return _back(f"/tickets/{ticket_id}")


async def public_portal_reply(request: Request) -> Response:
    who = await _require(request)
    form = await request.form()
    _check_csrf(form, who.csrf)
    ticket = await _own_ticket(who, int(request.path_params["id"]))
    if ticket["state"] == "closed":
        raise ValidationError({"state": N_("a closed ticket cannot change state")})
    body = form_str(form, "body", required=True, max_length=tickets.MAX_BODY)
    upload = await read_upload(form, "photo")
    if upload:
        attachments.check(*upload)
    async with db.atomic():
        message_id = await tickets.add_message(None, int(ticket["id"]), "inbound", body, author_email=who.email)
        if upload:
            await attachments.add(int(ticket["id"]), *upload, message_id=message_id)
    return _back(f"/tickets/{ticket['id']}")


async def public_portal_rate(request: Request) -> Response:
    who = await _require(request)
    form = await request.form()
    _check_csrf(form, who.csrf)
    ticket = await _own_ticket(who, int(request.path_params["id"]))
    if ticket["state"] not in ("resolved", "closed"):
        raise ValidationError({"csat": N_("only a resolved ticket can be rated")})
    raw = form_str(form, "csat")
    if raw not in {"1", "2", "3", "4", "5"}:
        raise ValidationError({"csat": N_("must be a whole number from 1 to 5")})
    comment = form_str(form, "comment", max_length=500)
    await Ticket.update({Ticket.csat: int(raw), Ticket.csat_comment: comment}).where(Ticket.id == ticket["id"])
    await audit.record("csat", model="crm_service.ticket", record_id=ticket["id"], changes={"csat": [ticket["csat"],
                                                                                                     int(raw)]},
                       login=who.email[:150])
    return _back(f"/tickets/{ticket['id']}")


async def public_portal_attachment(request: Request) -> Response:
    from crm_service.views import file_response

    who = await _require(request)
    row = await Attachment.select(Attachment.id, Attachment.ticket, Attachment.filename, Attachment.content_type,
                                  Attachment.content).where(
        (Attachment.id == int(request.path_params["id"])) & _shown_files()).first()
    if row is None:
        raise NotFound(N_("no such ticket"))
    await _own_ticket(who, int(row["ticket"]))
    return file_response(row)


def _customer(who: Customer) -> PortalCustomer:
    return PortalCustomer(person_id=who.person_id, email=who.email)


async def public_portal_record(request: Request) -> Response:
    """A record of another addon's section (a quote, an order, an invoice): the addon decides whether it is this
    customer's; anything else, another customer's included, is the same 404."""
    who = await _require(request)
    section, record_id = request.path_params["section"], int(request.path_params["id"])
    view = request.path_params.get("view", "")
    doc = await document(_customer(who), section, record_id, view)
    if doc is None or (view and doc.content is None) or (not view and not doc.template):
        raise NotFound(N_("no such document"))
    if doc.content is not None:
        name = doc.filename or "document"
        return Response(doc.content, media_type=doc.content_type, headers={
            "content-disposition": f"attachment; filename*=UTF-8''{quote(name)}", "cache-control": "no-store",
            "x-content-type-options": "nosniff"})
    return await _page(request, "crm_service/portal_record.html", customer=who, doc=doc, section=section,
                       record_url=f"{BASE}/r/{section}/{record_id}", portal_csrf=who.csrf)


async def public_portal_record_action(request: Request) -> Response:
    who = await _require(request)
    form = await request.form()
    _check_csrf(form, who.csrf)
    section, record_id = request.path_params["section"], int(request.path_params["id"])
    fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    if not await act(_customer(who), section, record_id, request.path_params["action"], fields):
        raise NotFound(N_("no such document"))
    return _back(f"/r/{section}/{record_id}")


ROUTES = [
    Route(f"{BASE.removeprefix('/service')}/attachments/{{id:int}}", _guarded(public_portal_attachment),
          name="public_portal_attachment"),
    Route(f"{BASE.removeprefix('/service')}/login", public_portal_login, methods=["GET", "POST"],
          name="public_portal_login"),
    Route(f"{BASE.removeprefix('/service')}/set-password/{{token:str}}", public_portal_set_password,
          methods=["GET", "POST"], name="public_portal_set_password"),
    Route(f"{BASE.removeprefix('/service')}/reset", public_portal_reset, methods=["POST"], name="public_portal_reset"),
    Route(f"{BASE.removeprefix('/service')}/logout", _guarded(public_portal_logout), methods=["POST"],
          name="public_portal_logout"),
    Route(f"{BASE.removeprefix('/service')}/", _guarded(public_portal_home), name="public_portal_home"),
    Route(f"{BASE.removeprefix('/service')}/tickets", _guarded(public_portal_ticket_create), methods=["POST"],
          name="public_portal_ticket_create"),
    Route(f"{BASE.removeprefix('/service')}/tickets/{{id:int}}", _guarded(public_portal_ticket),
          name="public_portal_ticket"),
    Route(f"{BASE.removeprefix('/service')}/tickets/{{id:int}}/reply", _guarded(public_portal_reply),
          methods=["POST"], name="public_portal_reply"),
    Route(f"{BASE.removeprefix('/service')}/r/{{section:str}}/{{id:int}}", _guarded(public_portal_record),
          name="public_portal_record"),
    Route(f"{BASE.removeprefix('/service')}/r/{{section:str}}/{{id:int}}/{{view:str}}", _guarded(public_portal_record),
          name="public_portal_record_file"),
    Route(f"{BASE.removeprefix('/service')}/r/{{section:str}}/{{id:int}}/{{action:str}}",
          _guarded(public_portal_record_action), methods=["POST"], name="public_portal_record_action"),
    Route(f"{BASE.removeprefix('/service')}/tickets/{{id:int}}/rate", _guarded(public_portal_rate), methods=["POST"],
          name="public_portal_rate"),
]
