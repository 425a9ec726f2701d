"""The loyalty pages: every read and write goes through the user's ``Access`` (rights, record rules, audit)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.errors import ValidationError
from core.security import audit
from core.web import access, form_str, pdf_response, render
from crm_loyalty import services
from crm_loyalty.models import Account

MODEL = "crm_loyalty.account"


async def account_list(request: Request) -> Response:
    acc = access(request)  # 401 for an anonymous request; the kernel redirects a browser to /login
    query = await acc.select(Account, MODEL, Account.id, Account.customer, Account.points,
                             Account.tier.name.as_alias("tier"))
    rows = [acc.present(MODEL, dict(row)) for row in await query.order_by(Account.id)]
    return await render(request, "crm_loyalty/account_list.html", accounts=rows,
                        may_create=acc.can(MODEL, "create"), may_update=acc.can(MODEL, "update"))


async def account_create(request: Request) -> Response:
    acc = access(request)
    await acc.require(MODEL, "create")
    form = await request.form()
    values = {"customer": form_str(form, "customer", required=True, max_length=200)}
    await acc.check_write(MODEL, values)
    rows = await Account.insert(Account(**values)).returning(Account.id)
    await audit.record("create", model=MODEL, record_id=rows[0]["id"], changes=audit.diff(None, values))
    return RedirectResponse("/loyalty/", status_code=303)


async def account_award(request: Request) -> Response:
    acc = access(request)
    account_id = request.path_params["id"]
    await acc.get(Account, MODEL, account_id, action="update")  # 404 outside the user's reach
    form = await request.form()
    try:
        points = int(form_str(form, "points", required=True))
    except ValueError:
        raise ValidationError({"points": "must be a whole number"}) from None
    await services.award(account_id, points)
    return RedirectResponse("/loyalty/", status_code=303)


async def account_statement(request: Request) -> Response:
    acc = access(request)
    row = acc.present(MODEL, await acc.get(Account, MODEL, request.path_params["id"]))
    return await pdf_response(request, "crm_loyalty/statement_pdf.html", f"loyalty-{row['id']}.pdf", account=row)


ROUTES = [
    Route("/", account_list, methods=["GET"], name="account_list"),
    Route("/", account_create, methods=["POST"], name="account_create"),
    Route("/{id:int}/award", account_award, methods=["POST"], name="account_award"),
    Route("/{id:int}/statement.pdf", account_statement, name="account_statement"),
]
