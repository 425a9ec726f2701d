"""Pages of crm_service: the agent's ticket list and ticket page, the knowledge base, the inbound-mail log.

Every read and write goes through the kernel's access layer; forms carry the CSRF token. The ticket list is
keyset-paged (``?after=<id>``): the same cost on the first page and on the thousandth.
"""

from __future__ import annotations

from typing import Any

from crm_contacts import api as contacts
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core import api, bulk, db, records
from core.errors import NotFound, ValidationError
from core.i18n import N_
from core.security.access import Access
from core.security.models import Team, User
from core.web import access, form_str, render
from crm_service import attachments, canned, dispatch, followup, kb, ticket_search, tickets
from crm_service.manifest import ARTICLE, CANNED, MAIL, MESSAGE, TICKET
from crm_service.models import Article, Attachment, CannedReply, InboundMail, Message, Ticket

PAGE = 50


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _int(raw: str | None, name: str) -> int | None:
    if raw in (None, ""):
        return None
    if not str(raw).isdigit() or len(str(raw)) > 12:
        raise ValidationError({name: N_("must be a whole number")})
    return int(str(raw))


async def ticket_list(request: Request) -> Response:
    acc = access(request)
    q = request.query_params
    where: Any = None

    def both(clause: Any) -> None:
        nonlocal where
        where = clause if where is None else where & clause

    state = q.get("state", "")
    if state == "active" or not state:
        both(Ticket.state.not_in(["resolved", "closed"]))
    elif state in tickets.STATES:
        both(Ticket.state == state)
    if q.get("priority") in tickets.PRIORITIES:
        both(Ticket.priority == q["priority"])
    if q.get("mine") and acc.principal:
        both(Ticket.owner == acc.principal.user_id)
    if q.get("queue") == "vip":
        both(Ticket.team.is_in(dispatch.vip_teams()))
    text = " ".join(q.get("q", "").split())[:100]
    after = _int(q.get("after"), "after")
    window: list[int] | None = None
    if text:
        match = ticket_search.where(text)
        if match is None:
            both(Ticket.id < 0)
        else:  # the newest matches first, then the page's filters and record rules over those alone
            window = await api.search_window(Ticket, match, ticket_search.WINDOW, after)
            both(bulk.any_of(Ticket.id, window or [-1]))  # one parameter: Piccolo compiles 2,000 in ~50 ms
    if after is not None:
        both(Ticket.id < after)
    rows = await (await acc.select(
        Ticket, TICKET, Ticket.id, Ticket.subject, Ticket.state, Ticket.priority, Ticket.channel, Ticket.person,
        Ticket.owner.name, Ticket.team.name, Ticket.first_response_due_at, Ticket.resolution_due_at,
        Ticket.first_response_breached, Ticket.resolution_breached, Ticket.first_response_at,
        Ticket.next_response_due_at, Ticket.next_response_breached,
        Ticket.created_at, where=where)).order_by(Ticket.id, ascending=False).limit(PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    names = await contacts.contact_names([r["person"] for r in rows if r["person"]])
    for r in rows:
        r["ref"] = tickets.reference(r["id"])
        r["customer"] = names.get(r["person"], "") if r["person"] else ""
    keep = {k: v for k, v in q.items() if k != "after"}
    next_after = rows[-1]["id"] if more and rows else None
    searched_part = window is not None and len(window) == ticket_search.WINDOW and not more
    if searched_part and window:
        next_after = window[-1]  # older matches are still unread: the next page searches below them
    return await render(request, "crm_service/ticket_list.html", rows=rows, filters=keep, L=_labels(),
                        next_after=next_after, searched_part=searched_part,
                        can_create=acc.can(TICKET, "create"))


def _labels() -> dict[str, dict[str, str]]:
    return {"state": tickets.STATES, "priority": tickets.PRIORITIES, "channel": tickets.CHANNELS,
            "type": tickets.TYPES, "kind": tickets.KINDS}


async def ticket_create(request: Request) -> Response:
    acc = access(request)
    form = await request.form()
    values: dict[str, Any] = {"subject": form_str(form, "subject", required=True, max_length=300),
                              "description": form_str(form, "description", max_length=tickets.MAX_BODY),
                              "channel": form_str(form, "channel") or "web",
                              "ticket_type": form_str(form, "ticket_type") or "question",
                              "priority": form_str(form, "priority") or "normal"}
    for name in ("customer_name", "customer_email", "customer_phone"):
        if form.get(name):
            values[name] = form_str(form, name, max_length=254)
    ticket_id = await tickets.create_ticket(acc, values)
    return _see_other(f"/service/tickets/{ticket_id}")


async def _customer(acc: Access, ticket: dict[str, Any]) -> dict[str, Any] | None:
    if not ticket["person"]:
        return None
    ref = contacts.seen_by(acc, await contacts.get_contact(int(ticket["person"])))
    return {"name": ref.display_name, "email": ref.email, "organization": ref.organization_name,
            "url": await contacts.contact_url(acc, contacts.PERSON_MODEL, ref.id)}


async def ticket_detail(request: Request) -> Response:
    acc = access(request)
    ticket_id = int(request.path_params["id"])
    ticket = acc.present(TICKET, await acc.get(Ticket, TICKET, ticket_id))
    ticket["tags"] = tickets.tag_list(ticket.get("tags"))
    messages = [acc.present(MESSAGE, dict(m)) for m in await Message.select(
        Message.id, Message.kind, Message.body, Message.author.name, Message.author_email, Message.created_at).where(
        Message.ticket == ticket_id).order_by(Message.id)] if acc.can(MESSAGE) else []  # a sender's address masked
    extras = await records.extras(acc, TICKET, ticket_id, timeline=True)
    files = await Attachment.select(Attachment.id, Attachment.filename, Attachment.size, Attachment.message).where(
        Attachment.ticket == ticket_id).order_by(Attachment.id)
    team = await Team.select(Team.name).where(Team.id == ticket["team"]).first() if ticket["team"] else None
    owner = await User.select(User.name).where(User.id == ticket["owner"]).first() if ticket["owner"] else None
    teams = await Team.select(Team.id, Team.name).order_by(Team.name)
    agents = await User.select(User.id, User.name).where(User.is_active == True).order_by(User.name)  # noqa: E712
    return await render(
        request, "crm_service/ticket_detail.html", ticket=ticket, ref=tickets.reference(ticket_id),
        messages=messages, extras=extras, files=files, customer=await _customer(acc, ticket), L=_labels(),
        team_name=team["name"] if team else "", owner_name=owner["name"] if owner else "", teams=teams,
        agents=agents, can_update=acc.can(TICKET, "update"),
        canned_replies=await (await acc.select(CannedReply, CANNED, CannedReply.id, CannedReply.name)).order_by(
            CannedReply.name) if acc.can(CANNED) else [], can_reply=acc.can(MESSAGE, "create"),
        suggestions=await kb.suggest(acc, ticket["subject"], ticket["description"]),
        follow_ups=await followup.open_for(ticket_id))


async def ticket_update(request: Request) -> Response:
    acc = access(request)
    ticket_id = int(request.path_params["id"])
    form = await request.form()
    values: dict[str, Any] = {}
    for name in ("priority", "ticket_type"):
        if form.get(name):
            values[name] = form_str(form, name, max_length=30)
    for name in ("team", "owner"):
        if name in form:
            values[name] = _int(form_str(form, name), name)
    if "tags" in form:
        values["tags"] = form_str(form, "tags", max_length=1000)
    await tickets.update_ticket(acc, ticket_id, values)
    return _see_other(f"/service/tickets/{ticket_id}")


async def ticket_state(request: Request) -> Response:
    acc = access(request)
    ticket_id = int(request.path_params["id"])
    form = await request.form()
    await tickets.change_state(acc, ticket_id, form_str(form, "state", required=True, max_length=30))
    return _see_other(f"/service/tickets/{ticket_id}")


async def ticket_message(request: Request) -> Response:
    acc = access(request)
    ticket_id = int(request.path_params["id"])
    form = await request.form()
    kind = "note" if form_str(form, "kind") == "note" else "reply"
    body = form_str(form, "body", max_length=tickets.MAX_BODY)
    canned_id = _int(form_str(form, "canned"), "canned")
    if canned_id is not None and not body.strip():
        body = await _canned_text(acc, canned_id, ticket_id)
    upload = await read_upload(form, "file")
    if upload:
        attachments.check(*upload)  # refused before anything is written
    async with db.atomic():
        message_id = await tickets.add_message(acc, ticket_id, kind, body)
        if upload:
            await attachments.add(ticket_id, *upload, message_id=message_id)
    return _see_other(f"/service/tickets/{ticket_id}")


async def _canned_text(acc: Access, canned_id: int, ticket_id: int) -> str:
    ticket = acc.present(TICKET, await acc.get(Ticket, TICKET, ticket_id))
    row = await acc.get(CannedReply, CANNED, canned_id)
    customer = await _customer(acc, ticket)
    return canned.fill(row["body"], {"customer_name": customer["name"] if customer else "",
                                     "ticket_ref": tickets.reference(ticket_id), "subject": ticket["subject"],
                                     "agent_name": acc.principal.name if acc.principal else ""})


async def read_upload(form: Any, name: str) -> tuple[str, bytes] | None:
    """The uploaded file of field ``name`` (filename, bytes), or None when none was chosen."""
    upload: Any = form.get(name)
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
        return None
    data = await upload.read(attachments.MAX_BYTES + 1)
    return str(upload.filename), bytes(data)


async def attachment_download(request: Request) -> Response:
    acc = access(request)
    row = await Attachment.select(Attachment.id, Attachment.ticket, Attachment.filename, Attachment.content_type,
                                  Attachment.content).where(Attachment.id == int(request.path_params["id"])).first()
    if row is None:
        raise NotFound("no such attachment")
    await acc.get(Ticket, TICKET, int(row["ticket"]))  # a file is read like its ticket
    return file_response(row)


def file_response(row: dict[str, Any]) -> Response:
    from urllib.parse import quote

    inline = row["content_type"].startswith("image/") or row["content_type"] == "application/pdf"
    disposition = "inline" if inline else "attachment"
    return Response(bytes(row["content"]), media_type=row["content_type"], headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(row['filename'])}",
        "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"})


async def ticket_merge(request: Request) -> Response:
    acc = access(request)
    ticket_id = int(request.path_params["id"])
    form = await request.form()
    raw = form_str(form, "survivor", required=True, max_length=20).strip().upper().removeprefix("SR-")
    survivor = _int(raw, "survivor")
    if survivor is None:
        raise ValidationError({"survivor": N_("is required")})
    await tickets.merge(acc, ticket_id, survivor)
    return _see_other(f"/service/tickets/{survivor}")


async def ticket_report(request: Request) -> Response:
    """The service report of a ticket as a PDF (the reader's language): request, public conversation, SLA."""
    from core import i18n
    from core.web import pdf_response

    acc = access(request)
    ticket_id = int(request.path_params["id"])
    ticket = acc.present(TICKET, await acc.get(Ticket, TICKET, ticket_id))
    messages = await Message.select(Message.kind, Message.body, Message.created_at).where(
        (Message.ticket == ticket_id) & Message.kind.is_in(["inbound", "reply"])).order_by(Message.id)
    customer = await _customer(acc, ticket)
    await audit_read(ticket_id)
    return await pdf_response(request, "crm_service/report_pdf.html", f"{tickets.reference(ticket_id)}.pdf",
                              ticket=ticket, ref=tickets.reference(ticket_id), messages=messages, L=_labels(),
                              customer=customer["name"] if customer else "",
                              lang="zh-CN" if i18n.language().startswith("zh") else "en")


async def audit_read(ticket_id: int) -> None:
    from core.security import audit

    await audit.record("export", model=TICKET, record_id=ticket_id, detail="service report PDF")


async def ticket_invite(request: Request) -> Response:
    """Invite the ticket's customer to the portal (a link to set a password, mailed to them)."""
    from core.jobs import enqueue
    from crm_service import portal

    acc = access(request)
    ticket_id = int(request.path_params["id"])
    ticket = await acc.get(Ticket, TICKET, ticket_id, action="update")
    if not ticket["person"] or not ticket["customer_email"]:
        raise ValidationError({"customer_email": N_("the customer has no e-mail address")})
    link = await portal.invite(int(ticket["person"]), ticket["customer_email"])
    await enqueue("crm_service.send_portal_invite", to=ticket["customer_email"], path=link,
                  user_id=acc.principal.user_id if acc.principal else None)
    return _see_other(f"/service/tickets/{ticket_id}?invited=1")


async def article_list(request: Request) -> Response:
    acc = access(request)
    text = " ".join(request.query_params.get("q", "").split())[:200]
    if text:
        rows = await kb.search(acc, text, limit=50)
    else:
        rows = await (await acc.select(Article, ARTICLE, Article.id, Article.title, Article.category,
                                       Article.language, Article.is_public)).order_by(
            Article.updated_at, ascending=False).limit(100)
    return await render(request, "crm_service/article_list.html", rows=rows, q=text, languages=kb.LANGUAGES,
                        can_create=acc.can(ARTICLE, "create"))


def _article_values(form: Any) -> dict[str, Any]:
    return {"title": form_str(form, "title", required=True, max_length=200),
            "body": form_str(form, "body", max_length=200_000), "category": form_str(form, "category", max_length=80),
            "language": form_str(form, "language") or "zh_CN", "is_public": form.get("is_public") == "on"}


async def article_create(request: Request) -> Response:
    acc = access(request)
    article_id = await kb.save_article(acc, _article_values(await request.form()))
    return _see_other(f"/service/articles/{article_id}")


async def article_detail(request: Request) -> Response:
    acc = access(request)
    article = await acc.get(Article, ARTICLE, int(request.path_params["id"]))
    return await render(request, "crm_service/article_detail.html", article=article, html=kb.render(article["body"]),
                        languages=kb.LANGUAGES, can_update=acc.can(ARTICLE, "update"))


async def article_update(request: Request) -> Response:
    acc = access(request)
    article_id = int(request.path_params["id"])
    await kb.save_article(acc, _article_values(await request.form()), article_id)
    return _see_other(f"/service/articles/{article_id}")


async def mail_log(request: Request) -> Response:
    acc = access(request)
    rows = await (await acc.select(InboundMail, MAIL, InboundMail.id, InboundMail.created_at, InboundMail.sender,
                                   InboundMail.subject, InboundMail.outcome, InboundMail.note,
                                   InboundMail.ticket)).order_by(InboundMail.id, ascending=False).limit(200)
    return await render(request, "crm_service/mail_log.html", rows=rows)


def portal_routes() -> list[BaseRoute]:
    from crm_service.portal import ROUTES as PORTAL

    return list(PORTAL)


ROUTES: list[BaseRoute] = [
    Route("/", ticket_list, name="ticket_list"),
    Route("/", ticket_create, methods=["POST"], name="ticket_create"),
    Route("/tickets/{id:int}", ticket_detail, name="ticket_detail"),
    Route("/tickets/{id:int}/update", ticket_update, methods=["POST"], name="ticket_update"),
    Route("/tickets/{id:int}/state", ticket_state, methods=["POST"], name="ticket_state"),
    Route("/tickets/{id:int}/messages", ticket_message, methods=["POST"], name="ticket_message"),
    Route("/tickets/{id:int}/merge", ticket_merge, methods=["POST"], name="ticket_merge"),
    Route("/tickets/{id:int}/report.pdf", ticket_report, name="ticket_report"),
    Route("/tickets/{id:int}/invite", ticket_invite, methods=["POST"], name="ticket_invite"),
    Route("/articles", article_list, name="article_list"),
    Route("/articles", article_create, methods=["POST"], name="article_create"),
    Route("/articles/{id:int}", article_detail, name="article_detail"),
    Route("/articles/{id:int}", article_update, methods=["POST"], name="article_update"),
    Route("/mail", mail_log, name="mail_log"),
    Route("/attachments/{id:int}", attachment_download, name="attachment_download"),
    *portal_routes(),
]
