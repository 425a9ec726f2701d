"""A run whose lease ran out while it was still going (its beats stalled on a loaded machine) and whose order
another runner has taken since: it must neither renew — and so take back — that runner's lease, nor call the ERP
for the order (two runners searching then creating would make two ERP sales)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from erp_bridge.backends.fake import FakeBackend
from erp_helpers import binding, customer, order


async def test_a_run_that_lost_its_lease_neither_renews_it_nor_calls_the_erp(
        fake: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    from erp_bridge import connection, sales, sync

    cfg = await connection.active()
    order_id = await order(await customer(), publish=False)
    loaded = await sales.load_order(order_id)
    assert loaded is not None
    lease_seconds = sync.LEASE
    monkeypatch.setattr(sync, "LEASE", dt.timedelta(seconds=0.2))
    first = await sync.claim(cfg, loaded, "push")  # runner A: its beats will not come in time
    lease = sync._Lease([first.binding_id], first.until)
    await asyncio.sleep(0.3)
    monkeypatch.setattr(sync, "LEASE", lease_seconds)
    second = await sync.claim(cfg, loaded, "push")  # runner B takes the run-out lease: B is pushing now
    taken = (await binding(order_id))["locked_until"]
    assert second.until is not None and taken > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)

    assert await lease.renew() == set()  # A's late beat: B's lease is left alone
    assert (await binding(order_id))["locked_until"] == taken
    calls = list(fake.calls)
    with pytest.raises(sync.Busy, match="lease ran out before the ERP call"):
        await sync._push_claimed(cfg, connection.open_backend(cfg), loaded, first, lease)
    assert fake.calls == calls and not fake.sales  # A sent nothing to the ERP
    after = await binding(order_id)
    assert (after["locked_until"], after["state"]) == (taken, "in_flight")  # B's lease and row untouched

    # B's run goes on as usual, its lease still its own: one sale
    b_lease = sync._Lease([second.binding_id], second.until)
    assert await b_lease.renew() == {second.binding_id}
    assert await sync._push_claimed(cfg, connection.open_backend(cfg), loaded, second, b_lease) == "created"
    assert len(fake.sales) == 1 and (await binding(order_id))["state"] == "synced"


async def test_a_live_run_keeps_its_lease_through_its_beats(fake: FakeBackend) -> None:
    from erp_bridge import connection, sales, sync

    cfg = await connection.active()
    order_id = await order(await customer(), publish=False)
    loaded = await sales.load_order(order_id)
    assert loaded is not None
    held = await sync.claim(cfg, loaded, "push")
    lease = sync._Lease([held.binding_id], held.until)
    before = (await binding(order_id))["locked_until"]
    for _ in range(3):  # each beat writes a new token; the next beat still recognises the row as its own
        assert await lease.renew() == {held.binding_id}
    assert (await binding(order_id))["locked_until"] > before
