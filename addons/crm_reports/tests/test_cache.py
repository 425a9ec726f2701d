"""The figure cache: a report seen again is served from the cache (in this process in the embedded shape, from
Redis when the CRM has one), per viewer's scope, and a write to the dataset's table changes the figure at once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from reports_helpers import DEALS, Org

REDIS = "redis://127.0.0.1:6379/15"


async def _figures(org: Org, store: str) -> None:
    from crm_reports import cache, reports

    from core import datasets, db, versions
    from core.bulk import insert_rows
    from core.security import audit

    assert cache.mode() == store
    manager, rep = await org.acc("manager"), await org.acc("rep1")
    ds = await datasets.dataset(DEALS, manager)
    await versions.bump(versions.model_key(ds.model))  # entries of earlier runs sharing this store: unreachable
    q = reports.query_of(DEALS, {"dimensions": ["state"], "measures": ["count", "expected_revenue"]})

    def counts(result: datasets.Result) -> dict[str, int]:
        return {r["state"]: r["count"] for r in result.rows}

    first = await reports.run(manager, q)
    hits = cache.stats["hits"]
    again = await reports.run(manager, q)
    assert cache.stats["hits"] == hits + 1
    assert again.rows == first.rows and again.columns == first.columns
    assert all(isinstance(r["expected_revenue"], Decimal) for r in again.rows)
    # a dashboard fetches its cards' entries at once (one round trip to Redis), each then served from that
    await cache.prefetch(manager, [q])
    if store == "redis":
        assert len(cache._prefetched.get() or {}) == 1
    assert (await reports.run(manager, q)).rows == first.rows and cache.stats["hits"] == hits + 2
    assert not cache._prefetched.get()  # used once
    hits = cache.stats["hits"]
    # another viewer has an entry of their own: a rep counts only the deals they may read
    mine = await reports.run(rep, q)
    assert sum(counts(mine).values()) < sum(counts(first).values())
    assert cache.stats["hits"] == hits
    # a bulk write (core.bulk) to the dataset's table: the next view computes the new figure at once
    when = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    [new_id] = await insert_rows(ds.table, [{"name": "Cached?", "stage": next(iter(org.stages)), "state": "won",
                                             "expected_revenue": Decimal("10.00"), "owner": org.ids["rep1"],
                                             "team": org.deals[0]["team"], "source": "web", "region": "North",
                                             "created_at": when, "closed_at": when}])
    after = await reports.run(manager, q)
    assert counts(after)["won"] == counts(first)["won"] + 1
    # an audited write (the kernel's write paths audit every change) counts once its transaction commits
    async with db.atomic():
        await ds.table.update({ds.table._meta.get_column_by_name("state"): "lost"}).where(
            ds.table._meta.primary_key == new_id)
        await audit.record("update", model=ds.model, record_id=new_id, changes={"state": ["won", "lost"]})
    lost = await reports.run(manager, q)
    assert counts(lost)["won"] == counts(first)["won"] and counts(lost)["lost"] == counts(first)["lost"] + 1
    # a cached entry round-trips every value type a result holds
    text = cache.dumps(lost)
    assert cache.loads(text).rows == lost.rows


async def test_cached_figure_served_and_a_write_changes_it_at_once(org: Org, monkeypatch: Any) -> None:
    from crm_reports import cache

    from core import versions

    await _figures(org, "local")  # the embedded shape: no Redis configured
    monkeypatch.setattr(versions, "redis_url", lambda: REDIS)
    monkeypatch.setattr(cache, "mode", lambda: "redis")
    await _figures(org, "redis")


@pytest.mark.parametrize("value", [Decimal("1.50"), dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
                                   dt.date(2026, 1, 2), "华东", None, 3])
def test_cache_codec_keeps_types(value: Any) -> None:
    from crm_reports import cache

    from core.datasets import Result, ResultColumn

    result = Result([ResultColumn("x", "X", "dimension")], [{"x": value}], [{"x": value, "_level": 0}])
    back = cache.loads(cache.dumps(result))
    assert back.rows[0]["x"] == value and type(back.rows[0]["x"]) is type(value)
