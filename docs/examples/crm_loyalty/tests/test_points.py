"""Awarding points: the tier follows the balance, a balance never goes below zero, and the event is published;
the dashboard card counts only what the user may read."""

from __future__ import annotations

from typing import Any

import pytest

from core import hooks
from core.errors import ValidationError
from core.security.access import Access, policy
from core.security.principal import load
from core.testing import make_user


class Listener:
    """Stands in for another addon listening to crm_loyalty's event."""

    def __init__(self) -> None:
        self.events: list[tuple[int, int, int]] = []

    @hooks.hookimpl(optionalhook=True)
    def crm_loyalty_points_awarded(self, account_id: int, points: int, balance: int) -> None:
        self.events.append((account_id, points, balance))


async def _tier(account_id: int) -> Any:
    from crm_loyalty.models import Account

    row = await Account.select(Account.points, Account.tier.name.as_alias("tier")).where(
        Account.id == account_id).first()
    return row["points"], row["tier"]


async def test_tier_follows_the_balance(crm_boot: Any) -> None:
    from crm_loyalty import services
    from crm_loyalty.models import Account

    runtime = await crm_boot("crm_loyalty")
    listener = Listener()
    runtime.plugins.register(listener)
    account_id = (await Account.insert(Account(customer="Acme")).returning(Account.id))[0]["id"]

    assert await services.award(account_id, 1200) == 1200
    assert await _tier(account_id) == (1200, "Silver")
    with pytest.raises(ValidationError):
        await services.award(account_id, -1300)
    assert await services.award(account_id, -1200) == 0
    assert await _tier(account_id) == (0, "Bronze")
    assert listener.events == [(account_id, 1200, 1200), (account_id, -1200, 0)]


async def _access(login: str, *roles: str) -> Access:
    return Access(await load(await make_user(login, *roles), implied=policy().implied))


async def test_dashboard_widget_reads_through_access(crm_boot: Any) -> None:
    from crm_loyalty.models import Account

    runtime = await crm_boot("crm_loyalty")
    await Account.insert(Account(customer="Acme"), Account(customer="Globex"))

    async def widgets(access: Access) -> list[hooks.Widget]:
        found = await hooks.collect(runtime.plugins, "crm_dashboard_widgets", access=access)
        return [w for w in found if w.key == "crm_loyalty"]

    clerk = await widgets(await _access("clerk", "loyalty_clerk"))
    assert [w.context["accounts"] for w in clerk] == [2]
    # the kernel's readonly role reads every addon model with a grant, without one of its own
    assert len(await widgets(await _access("reader", "readonly"))) == 1
    assert await widgets(await _access("nobody")) == []
