"""Which Tryton failures are worth another try (issue 17 §1): an outage, a cut connection, a time-out or a 5xx is
transient — the order keeps its place and tries again after its backoff; a refusal is permanent."""

from __future__ import annotations

import httpx
import pytest
from erp_bridge.backends.base import ErpPermanentError, ErpTransientError
from erp_bridge.backends.tryton import TrytonBackend


def _backend(answer: object) -> TrytonBackend:
    backend = TrytonBackend("http://tryton.test/", "crm", "admin", "pw", timeout=2)
    backend._client = httpx.Client(transport=httpx.MockTransport(answer))  # type: ignore[arg-type]
    backend._auth = "Session x"  # logged in: the call itself fails
    return backend


@pytest.mark.parametrize("failure", [
    httpx.ConnectError("connection refused"), httpx.RemoteProtocolError("server disconnected"),
    httpx.ReadError("connection reset by peer"), httpx.ReadTimeout("timed out"), httpx.ConnectTimeout("timed out"),
])
def test_a_cut_or_refused_connection_is_transient(failure: Exception) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(ErpTransientError):
        _backend(answer).call("model.sale.sale.search", [])


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_server_errors_time_outs_and_rate_limits_are_transient(status: int) -> None:
    with pytest.raises(ErpTransientError):
        _backend(lambda request: httpx.Response(status)).call("model.sale.sale.search", [])


def test_tryton_database_errors_are_transient_and_refusals_permanent() -> None:
    locked = {"id": 0, "error": ["DatabaseOperationalError", "database is locked"]}
    with pytest.raises(ErpTransientError):
        _backend(lambda request: httpx.Response(200, json=locked)).call("model.sale.sale.create", [])
    refused = {"id": 0, "error": ["UserError", ["The sale needs a party.", "", ""]]}
    with pytest.raises(ErpPermanentError, match="needs a party"):
        _backend(lambda request: httpx.Response(200, json=refused)).call("model.sale.sale.create", [])
    with pytest.raises(ErpPermanentError):
        _backend(lambda request: httpx.Response(403)).call("model.sale.sale.create", [])
