"""The RFM page: the last rebuild (when, how long, how many customers), "Rebuild now", and each value tier with
its rule and how many customers are in it. Tiers are edited on the kernel's settings page for
``/marketing/tiers`` (``rfm_resources``); this page links there."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from core.security import audit
from core.web import access, render
from crm_marketing import orders, rfm
from crm_marketing.manifest import SEGMENT
from crm_marketing.models import RfmScore, ValueTier


async def rfm_page(request: Request) -> Response:
    acc = access(request)
    await acc.require(SEGMENT)
    tiers = [dict(r) for r in await (await acc.select(ValueTier, SEGMENT)).order_by(ValueTier.sequence)]
    counts = {
        r["tier"]: int(r["n"])
        for r in await RfmScore.raw('SELECT "tier", COUNT(*) AS n FROM "crm_marketing_rfm_score" GROUP BY "tier"')
    }
    for t in tiers:
        rule = json.loads(t["rule"]) if isinstance(t["rule"], str) else t["rule"]
        t["rule_text"] = json.dumps(rule, ensure_ascii=False) if rule else ""
        t["customers"] = counts.get(t["key"], 0)
    return await render(
        request,
        "crm_marketing/rfm.html",
        build=await rfm.last_build(),
        tiers=tiers,
        untiered=counts.get(None, 0),
        has_orders=await orders.source() is not None,
        currency=orders.CURRENCY,
        may_update=acc.can(SEGMENT, "update"),
    )


async def rfm_rebuild(request: Request) -> Response:
    acc = access(request)
    await acc.require(SEGMENT, "update")
    done = await rfm.rebuild()
    await audit.record("update", model=SEGMENT, record_id=0, changes={"rfm_rebuild": [None, done["customers"]]})
    return RedirectResponse("/marketing/rfm", status_code=303)


RFM_ROUTES: list[BaseRoute] = [
    Route("/rfm", rfm_page, name="rfm"),
    Route("/rfm/rebuild", rfm_rebuild, methods=["POST"], name="rfm_rebuild"),
]
