"""``/health`` and ``/metrics`` (public)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from tests.api.conftest import Api

from kyok import __version__

pytestmark = pytest.mark.anyio


async def test_health_reports_units_and_sealed_state(api: Api) -> None:
    r = await api.client.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "version": __version__,
        "units": {"total": 1, "sealed": 0},
    }
    api.node.units.for_instance(api.instance).seal()
    sealed = (await api.client.get("/health")).json()
    assert sealed["status"] == "sealed" and sealed["units"] == {"total": 1, "sealed": 1}
    assert api.instance not in (await api.client.get("/health")).text  # public: no ids
    metrics = (await api.client.get("/metrics")).text
    assert "kyok_units 1.0" in metrics and "kyok_units_sealed 1.0" in metrics


async def test_health_is_503_when_the_store_does_not_answer(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(api.node.unit_console, "overview", down)
    r = await api.client.get("/health")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable", "version": __version__}
    assert (await api.client.get("/metrics")).status_code == 200  # the unit gauges are left out


async def test_metrics_count_requests_by_route_template(api: Api) -> None:
    key = await api.create_key()
    await api.wrap(key["id"])
    await api.wrap("no-such-key")
    await api.client.get("/no/such/route")
    text = (await api.client.get("/metrics")).text
    assert (
        'kyok_http_requests_total{method="POST",route="/api/v2/keys/{id}/actions/wrap",status="200"} 1.0'
        in text
    )
    assert (
        'kyok_http_requests_total{method="POST",route="/api/v2/keys/{id}/actions/wrap",status="404"} 1.0'
        in text
    )
    assert 'kyok_http_requests_total{method="GET",route="unmatched",status="404"} 1.0' in text
    assert 'kyok_key_operations_total{operation="wrap",outcome="client_error"} 1.0' in text
    assert 'kyok_key_operations_total{operation="create_key",outcome="success"} 1.0' in text
    assert key["id"] not in text and "no-such-key" not in text
