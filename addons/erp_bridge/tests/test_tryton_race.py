"""Two runners of one order against a real trytond: the search for our reference and the ``create`` are two
Tryton transactions, so a runner whose lease ran out mid-push (or a killed worker whose ``create`` was still
running in trytond) can commit its sale between the other runner's search and create. Reproduced here by
committing the other runner's sale exactly in that window: still one Tryton sale per CRM order."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from erp_bridge.backends.base import OrderPayload
from erp_bridge.backends.tryton import TrytonBackend
from erp_bridge.testing.tryton_server import TrytonConnection, proteus_config
from erp_payloads import make_order
from proteus import Model

pytestmark = pytest.mark.tryton


@pytest.fixture
def other(tryton: TrytonConnection) -> Iterator[TrytonBackend]:
    """The second runner: another worker's backend, its own Tryton session."""
    b = TrytonBackend(tryton.url, tryton.database, tryton.username, tryton.password, timeout=30)
    yield b
    b.close()


def _sales(conn: TrytonConnection, ref: str) -> list[tuple[int, str]]:
    found = Model.get("sale.sale", config=proteus_config(conn)).find([("reference", "=", ref)])
    return sorted((s.id, s.state) for s in found)


def _before_create(backend: TrytonBackend, meanwhile: Callable[[list[OrderPayload]], None]) -> None:
    """Run ``meanwhile`` once, after ``backend`` searched for the references and right before its ``create``."""
    create = backend._create_sales
    done: list[bool] = []

    def racing(orders: list[OrderPayload]) -> list[int]:
        if not done:
            done.append(True)
            meanwhile(orders)
        return create(orders)

    backend._create_sales = racing  # type: ignore[method-assign]


def test_a_sale_the_other_runner_finished_meanwhile_is_resumed_not_doubled(
        backend: TrytonBackend, other: TrytonBackend, tryton: TrytonConnection) -> None:
    order = make_order("CRM-SO-7001")
    theirs: list[str] = []
    _before_create(backend, lambda orders: theirs.append(other.push_order(order).external_id))
    (pushed,) = backend.push_orders([order])
    assert pushed.error is None and pushed.order is not None
    assert pushed.existed and pushed.order.external_id == theirs[0]
    assert pushed.order.state == "processing"
    assert _sales(tryton, "CRM-SO-7001") == [(int(theirs[0]), "processing")]


def test_two_drafts_of_one_order_end_as_one_sale_whoever_looks_first(
        backend: TrytonBackend, other: TrytonBackend, tryton: TrytonConnection) -> None:
    """Both runners created their draft before either looked again: both keep the first (lowest id), the later
    one's draft is deleted — in a batch, next to an order with no race."""
    racing, calm = make_order("CRM-SO-7002"), make_order("CRM-SO-7003")
    theirs: list[int] = []
    _before_create(backend, lambda orders: theirs.extend(other._create_sales([racing])))
    pushed = {p.ref: p for p in backend.push_orders([racing, calm])}
    assert pushed["CRM-SO-7002"].existed and pushed["CRM-SO-7002"].order is not None
    assert pushed["CRM-SO-7002"].order.external_id == str(theirs[0])
    # the other runner now looks again too: it keeps its own sale, the one this runner drove
    kept, _ = other._one_sale_each({"CRM-SO-7002": str(theirs[0])})["CRM-SO-7002"]
    assert kept is None
    assert _sales(tryton, "CRM-SO-7002") == [(theirs[0], "processing")]
    assert len(_sales(tryton, "CRM-SO-7003")) == 1 and not pushed["CRM-SO-7003"].existed


def test_one_order_alone_takes_the_same_care(
        backend: TrytonBackend, other: TrytonBackend, tryton: TrytonConnection) -> None:
    order = make_order("CRM-SO-7004")
    theirs: list[int] = []
    _before_create(backend, lambda orders: theirs.extend(other._create_sales([order])))
    remote = backend.push_order(order)
    assert remote.external_id == str(theirs[0]) and remote.state == "processing"
    assert _sales(tryton, "CRM-SO-7004") == [(theirs[0], "processing")]
