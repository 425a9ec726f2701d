"""Sales pages show amounts, percentages and moments with the kernel's filters: the currency sign of the
reader's locale, and times in the reader's time zone (not raw ``120506.20`` or UTC ``strftime``)."""

from __future__ import annotations

from typing import Any

from crm_sales.models import StageHistory
from sales_helpers import build_org, new_deal

from core import formatting
from core.runtime import current
from core.security.models import User
from core.testing import login_client


async def test_amounts_and_times_follow_the_readers_locale_and_time_zone(crm_client: Any) -> None:
    client = await crm_client("crm_sales")
    org = await build_org(current())
    opp_id = await new_deal(await org.acc("rep1"), "Big deal", revenue="120506.2")
    entered = (await StageHistory.select(StageHistory.entered_at).where(
        StageHistory.opportunity == opp_id).first())["entered_at"]
    await login_client(client, "rep1")

    await User.update({User.language: "zh_CN", User.timezone: "Asia/Shanghai"}).where(User.id == org.ids["rep1"])
    board, detail = (await client.get("/sales/")).text, (await client.get(f"/sales/opportunities/{opp_id}")).text
    assert "¥120,506.20" in board and "CN¥" not in board and "120506.2" not in board
    assert "¥120,506.20" in detail and "120506.2" not in detail
    assert formatting.format_datetime(entered, locale="zh_CN", tz="Asia/Shanghai") in detail

    await User.update({User.language: "en", User.timezone: "UTC"}).where(User.id == org.ids["rep1"])
    board, detail = (await client.get("/sales/")).text, (await client.get(f"/sales/opportunities/{opp_id}")).text
    assert "CN¥120,506.20" in board and "CN¥120,506.20" in (await client.get("/sales/opportunities")).text
    shown = formatting.format_datetime(entered, locale="en", tz="UTC")
    assert shown in detail and shown != formatting.format_datetime(entered, locale="en", tz="Asia/Shanghai")
