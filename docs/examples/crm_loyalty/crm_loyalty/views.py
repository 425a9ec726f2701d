from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.web import access, form_str, pdf_response, render
from crm_loyalty import services
from crm_loyalty.models import Account

MODEL = "crm_loyalty.account"


async def account_list(request: Request):
    acc = access(request)
    query = await acc.select(Account, MODEL, Account.id, Account.customer, Account.points,
                             Account.tier.name.as_alias("tier"))
    return await render(request, "crm_loyalty/account_list.html", accounts=await query.order_by(Account.id))


async def account_create(request: Request):
    acc = access(request)
    await acc.require(MODEL, "create")
    form = await request.form()
    await Account.insert(Account(customer=form_str(form, "customer", required=True, max_length=200)))
    return RedirectResponse("/loyalty/", status_code=303)


async def account_award(request: Request):
    acc = access(request)
    await acc.get(Account, MODEL, request.path_params["id"], action="update")
    form = await request.form()
    raw = form_str(form, "points", required=True)
    try:
        points = int(raw)
    except ValueError:
        from core.errors import ValidationError

        raise ValidationError({"points": "must be a whole number"}) from None
    await services.award(request.path_params["id"], points)
    return RedirectResponse("/loyalty/", status_code=303)


async def account_statement(request: Request):
    acc = access(request)
    row = await acc.get(Account, MODEL, request.path_params["id"])
    return await pdf_response(request, "crm_loyalty/statement_pdf.html", f"loyalty-{row['id']}.pdf", account=row)


ROUTES = [
    Route("/", account_list, methods=["GET"], name="account_list"),
    Route("/", account_create, methods=["POST"], name="account_create"),
    Route("/{id:int}/award", account_award, methods=["POST"], name="account_award"),
    Route("/{id:int}/statement.pdf", account_statement, name="account_statement"),
]
