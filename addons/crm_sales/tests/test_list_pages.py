"""The deal, lead and quote lists page through every row (keyset cursors, 50 a page) in the order chosen: a
column the page offers or a custom field listed and seen in clear; an unknown sort or a forged cursor is a 422
naming it, a custom field masked for the user a 403 — the rights of the list apply to every page."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from crm_sales.models import Opportunity

from core.testing import csrf_of, login_client, make_user

RANK = {"model": "crm_sales.opportunity", "key": "rank", "kind": "number", "label_en": "Rank",
        "is_listed": True, "is_filterable": True}
MARGIN = {"model": "crm_sales.opportunity", "key": "margin", "kind": "number", "label_en": "Margin",
          "is_listed": True, "rules": {"sales_rep": "masked"}}


def _names(page: str) -> list[str]:
    return re.findall(r'href="/sales/opportunities/\d+">([^<]+)</a>', page)


def _next(page: str) -> str | None:
    found = re.search(r'rel="next" href="([^"]+)"', page)
    return found.group(1).replace("&amp;", "&") if found else None


async def _all_pages(client: Any, url: str) -> list[str]:
    names: list[str] = []
    page = await client.get(url)
    assert page.status_code == 200, page.text
    names += _names(page.text)
    while nxt := _next(page.text):
        page = await client.get("/sales/opportunities" + nxt)
        assert page.status_code == 200, page.text
        names += _names(page.text)
    return names


async def test_deal_list_pages_through_every_row_in_the_order_chosen(crm_client: Any) -> None:
    from sales_helpers import build_org, new_deal

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    await make_user("root", "admin")
    await login_client(client, "root")
    admin_csrf = csrf_of((await client.get("/")).text)
    for body in (RANK, MARGIN):
        made = await client.post("/api/admin/custom-fields", json=body, headers={"X-CSRF-Token": admin_csrf})
        assert made.status_code == 201, made.text
    await client.post("/logout", data={"csrf_token": admin_csrf})
    rep = await org.acc("rep1")
    first = await new_deal(rep, "Deal 000", revenue="5")
    row = await Opportunity.select().where(Opportunity.id == first).first()
    kept = {k: v for k, v in row.items() if k in ("stage", "owner", "team", "currency", "state", "person")}
    # 119 more, named so name order and id order differ; rank counts down, every seventh has none
    await Opportunity.insert(*[Opportunity(**kept, name=f"Deal {(i * 37) % 120:03d}", expected_revenue=Decimal(i),
                                           custom={"margin": i} | ({} if i % 7 == 0 else {"rank": 200 - i}))
                               for i in range(1, 120)])
    others = await org.acc("rep3")  # another team's deal: never on rep1's pages
    await new_deal(others, "Zz other team")
    await login_client(client, "rep1")

    newest = await _all_pages(client, "/sales/opportunities")
    assert len(newest) == 120 and len(set(newest)) == 120 and "Zz other team" not in newest
    by_name = await _all_pages(client, "/sales/opportunities?sort=name")
    assert by_name == sorted(newest)
    by_revenue = await _all_pages(client, "/sales/opportunities?sort=-expected_revenue")
    assert by_revenue[0] == f"Deal {(119 * 37) % 120:03d}" and len(by_revenue) == 120
    by_rank = await _all_pages(client, "/sales/opportunities?sort=cf_rank")
    ranked = sorted((i for i in range(1, 120) if i % 7), key=lambda i: 200 - i)
    unranked = [i for i in range(1, 120) if i % 7 == 0]  # no rank: last, by id (Deal 000 is the oldest)
    assert by_rank == [f"Deal {(i * 37) % 120:03d}" for i in ranked] + ["Deal 000"] + [
        f"Deal {(i * 37) % 120:03d}" for i in unranked]
    page = (await client.get("/sales/opportunities?sort=-cf_rank")).text
    assert 'value="-cf_rank" selected' in page and "Rank ↓" in page and 'value="cf_margin"' not in page

    bad = await client.get("/sales/opportunities?sort=owner_password")
    assert bad.status_code == 422 and "sort" in bad.text
    forged = await client.get("/sales/opportunities?after=bm90LWEtY3Vyc29y")
    assert forged.status_code == 422 and "after" in forged.text
    masked = await client.get("/sales/opportunities?sort=cf_margin")  # masked for reps: not an order to probe
    assert masked.status_code == 403


async def test_lead_and_quote_lists_page_and_sort(crm_client: Any) -> None:
    from crm_sales import leads, quotes
    from sales_helpers import build_org, new_deal

    from core.runtime import current

    client = await crm_client("crm_sales")
    org = await build_org(current())
    rep = await org.acc("rep1")
    for i in range(55):
        await leads.create_lead(rep, {"name": f"Lead {i:02d}", "contact_name": "Buyer", "expected_revenue": str(i)})
    deal = await new_deal(rep, "Quoted")
    for _ in range(3):
        await quotes.create_quote(rep, deal, [{"description": "Item", "quantity": "1", "unit_price": "10"}])
    await login_client(client, "rep1")
    page = (await client.get("/sales/leads?state=new&sort=-expected_revenue")).text
    shown = re.findall(r'href="/sales/leads/\d+">([^<]+)</a>', page)
    assert shown[:2] == ["Lead 54", "Lead 53"] and len(shown) == 50
    nxt = _next(page)
    assert nxt and "state=new" in nxt and "sort=-expected_revenue" in nxt
    rest = re.findall(r'href="/sales/leads/\d+">([^<]+)</a>', (await client.get("/sales/leads" + nxt)).text)
    assert rest[-1] == "Lead 00" and len(rest) == 5  # the qualified lead is not "new": 56 leads, 55 new
    listed = (await client.get("/sales/quotes?sort=number")).text
    assert len(re.findall(r'href="/sales/quotes/\d+">', listed)) == 3 and 'rel="next"' not in listed
    assert (await client.get("/sales/quotes?sort=-bogus")).status_code == 422
