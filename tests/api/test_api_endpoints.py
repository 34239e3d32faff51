"""Each endpoint against the seeded database, with the exact JSON a client receives."""

from __future__ import annotations

from typing import Any

from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from connectorctl.store.logs import INSERT_LOG
from tests.api.conftest import NOW, NOW_DT, log_row, make_settings, rid


def entry(n: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": rid(n), "tenant_id": None, "service_name": "fake", "operation": "send_email",
        "endpoint": "https://fake.example.invalid/send", "method": "POST", "status": "success", "http_status_code": 202,
        "duration_ms": 0, "request_data": None, "response_data": None, "error_message": None, "error_code": None,
        "attempt_number": 1, "correlation_id": f"corr-{rid(n)[-2:]}", "direction": "outbound", "created_at": "",
    }
    base.update(fields)
    return base


def test_logs_newest_first_with_exact_rows_and_meta(client: Any) -> None:
    response = client.get("/api/connector/logs", params={"service": "fake", "limit": 2})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "data": [
            entry(3, tenant_id="t1", duration_ms=300, request_data={"to": "c@example.com"}, response_data={"id": "m3"}, created_at="2027-01-15T07:59:00.000Z"),
            entry(2, tenant_id="t2", duration_ms=200, request_data={"to": "b@example.com"}, response_data={"id": "m2"}, created_at="2027-01-15T07:55:00.000Z"),
        ],
        "meta": {"limit": 2, "offset": 0, "count": 2},
    }


def test_logs_filters_status_tenant_dates_and_offset(client: Any) -> None:
    failed = client.get("/api/connector/logs", params={"status": "failed"}).json()
    assert [r["id"] for r in failed["data"]] == [rid(20)]
    assert failed["data"][0] == entry(
        20, service_name="file", endpoint="https://file.example.invalid/send", status="failed", http_status_code=500, duration_ms=60,
        error_message="file: vendor error", error_code="vendor_unavailable", attempt_number=2, created_at="2027-01-15T07:59:30.000Z",
    )
    assert failed["meta"] == {"limit": 100, "offset": 0, "count": 1}
    tenant = client.get("/api/connector/logs", params={"tenant_id": "t1", "service": "fake"}).json()
    assert [r["id"] for r in tenant["data"]] == [rid(3), rid(1), rid(4)]
    window = client.get("/api/connector/logs", params={"date_from": "2027-01-15T07:50:00Z", "date_to": "2027-01-15T07:55:00Z", "service": "fake"}).json()
    assert [r["id"] for r in window["data"]] == [rid(2), rid(1)]
    unencoded_plus = client.get("/api/connector/logs?service=fake&date_from=2027-01-15T08:50:00+01:00&date_to=2027-01-15T08:55:00+01:00").json()
    assert [r["id"] for r in unencoded_plus["data"]] == [rid(2), rid(1)]
    day = client.get("/api/connector/logs", params={"date_from": "2027-01-13", "date_to": "2027-01-14", "service": "fake"}).json()
    assert [r["id"] for r in day["data"]] == [rid(4)]
    page = client.get("/api/connector/logs", params={"service": "fake", "limit": 2, "offset": 2}).json()
    assert [r["id"] for r in page["data"]] == [rid(1), rid(4)]
    assert page["meta"] == {"limit": 2, "offset": 2, "count": 2}
    assert client.get("/api/connector/logs").json()["meta"] == {"limit": 100, "offset": 0, "count": 15}


def test_metrics_default_period_is_seven_days_with_percentiles(client: Any) -> None:
    response = client.get("/api/connector/metrics/fake")
    assert response.status_code == 200
    assert response.json() == {
        "service": "fake",
        "period": {"from": "2027-01-08T08:00:00.000Z", "to": "2027-01-15T08:00:00.000Z"},
        "metrics": {
            "success_count": 3, "failure_count": 1, "success_rate": 75.0, "avg_duration_ms": 150.0,
            "retry_count": 0, "p50_ms": 100, "p95_ms": 300, "p99_ms": 300,
        },
    }


def test_metrics_relative_and_iso_periods(client: Any) -> None:
    recent = client.get("/api/connector/metrics/fake", params={"from": "-1days"}).json()
    assert recent["period"] == {"from": "2027-01-14T08:00:00.000Z", "to": "2027-01-15T08:00:00.000Z"}
    assert recent["metrics"]["success_count"] == 3 and recent["metrics"]["failure_count"] == 0 and recent["metrics"]["success_rate"] == 100.0
    old = client.get("/api/connector/metrics/legacyvendor", params={"from": "-30days"}).json()
    assert old["metrics"]["success_count"] == 1 and old["period"]["from"] == "2026-12-16T08:00:00.000Z"
    iso = client.get("/api/connector/metrics/file", params={"from": "2027-01-15T07:48:00Z", "to": "2027-01-15T07:59:59+00:00"}).json()
    assert iso["period"] == {"from": "2027-01-15T07:48:00.000Z", "to": "2027-01-15T07:59:59.000Z"}
    assert iso["metrics"] == {
        "success_count": 9, "failure_count": 1, "success_rate": 90.0, "avg_duration_ms": 15.0,
        "retry_count": 1, "p50_ms": 10, "p95_ms": 60, "p99_ms": 60,
    }


def test_metrics_for_a_configured_service_without_calls_are_zero(client: Any) -> None:
    assert client.get("/api/connector/metrics/console").json()["metrics"] == {
        "success_count": 0, "failure_count": 0, "success_rate": 0.0, "avg_duration_ms": 0.0,
        "retry_count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
    }


def test_health_reports_a_real_database_round_trip(client: Any) -> None:
    response = client.get("/api/connector/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy", "timestamp": "2027-01-15T08:00:00.000Z",
        "services": {"database": "connected", "connector": "operational"},
    }


def test_health_is_503_when_the_database_is_unusable(home: Any) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    home.mkdir(parents=True)
    broken = home / "broken.db"
    broken.write_bytes(b"this is not an sqlite database at all" * 200)
    connector = Connector(make_settings(home, database=broken), clock=FakeClock(NOW))
    with TestClient(create_app(connector), raise_server_exceptions=False) as client:
        response = client.get("/api/connector/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy" and body["services"] == {"database": "disconnected", "connector": "operational"}
        assert "corrupt or not an SQLite file" in body["error"]
        for path in ("/api/connector/logs", "/api/connector/status", "/api/connector/metrics/fake", "/metrics"):
            other = client.get(path)
            assert other.status_code == 503, path
            assert other.json()["error"]["code"] == "state_unavailable"


def test_status_gives_each_configured_service_a_verdict(client: Any) -> None:
    response = client.get("/api/connector/status")
    assert response.status_code == 200
    assert response.json() == {
        "services": {
            "fake": {"status": "healthy", "success_rate": 100.0, "avg_duration_ms": 200.0, "circuit_state": "closed", "calls": 3, "attempts": 3, "attempt_success_rate": 100.0, "window_minutes": 15},
            "file": {"status": "degraded", "success_rate": 90.0, "avg_duration_ms": 15.0, "circuit_state": "closed", "calls": 10, "attempts": 10, "attempt_success_rate": 90.0, "window_minutes": 15},
            "console": {"status": "down", "success_rate": None, "avg_duration_ms": None, "circuit_state": "open", "calls": 0, "attempts": 0, "attempt_success_rate": None, "window_minutes": 15},
        },
        "timestamp": "2027-01-15T08:00:00.000Z",
    }


def test_status_down_on_low_success_rate_and_half_open_after_timeout(connector: Connector) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    with connector.db.write() as c:
        c.executemany(INSERT_LOG, [log_row(rid(40 + i), "fake", "failed", 1, _ago(i), http=503) for i in range(3)])
    connector.clock.advance(31)  # console's open_until passed: a probe may run
    with TestClient(create_app(connector)) as client:
        services = client.get("/api/connector/status").json()["services"]
    assert services["fake"]["status"] == "down" and services["fake"]["success_rate"] == 50.0
    assert services["console"] == {"status": "degraded", "success_rate": None, "avg_duration_ms": None, "circuit_state": "half_open", "calls": 0, "attempts": 0, "attempt_success_rate": None, "window_minutes": 15}


def _ago(i: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=20 + i)


def test_prometheus_exposition_counts_and_updates_incrementally(client: Any, connector: Connector) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = set(response.text.splitlines())
    for expected in (
        'connectorctl_calls_total{service="fake",status="success"} 3.0',
        'connectorctl_calls_total{service="fake",status="rate_limited"} 1.0',
        'connectorctl_calls_total{service="file",status="failed"} 1.0',
        'connectorctl_calls_total{service="file",status="success"} 9.0',
        'connectorctl_call_duration_seconds_bucket{le="0.1",service="fake"} 2.0',
        'connectorctl_call_duration_seconds_bucket{le="0.25",service="fake"} 3.0',
        'connectorctl_call_duration_seconds_bucket{le="+Inf",service="fake"} 4.0',
        'connectorctl_call_duration_seconds_count{service="fake"} 4.0',
        'connectorctl_call_duration_seconds_sum{service="fake"} 0.6',
        'connectorctl_rate_limit_rejections_total{service="fake",source="local"} 1.0',
        'connectorctl_circuit_state{service="console",state="open"} 1.0',
        'connectorctl_circuit_state{service="console",state="closed"} 0.0',
        'connectorctl_circuit_state{service="fake",state="closed"} 1.0',
        "connectorctl_log_rows_scraped_total 15.0",
    ):
        assert expected in lines, expected
    with connector.db.write() as c:
        c.execute(INSERT_LOG, log_row(rid(50), "fake", "rate_limited", 3, _ago(0), http=429, error="429 from vendor"))
    lines = set(client.get("/metrics").text.splitlines())
    assert 'connectorctl_calls_total{service="fake",status="rate_limited"} 2.0' in lines
    assert 'connectorctl_rate_limit_rejections_total{service="fake",source="vendor"} 1.0' in lines
    assert "connectorctl_log_rows_scraped_total 16.0" in lines


def test_prometheus_counters_survive_a_purge_and_agree_across_server_processes(connector: Connector) -> None:
    """A server process started before a purge and one started after it (or a restart) show the same numbers."""
    from datetime import timedelta

    from starlette.testclient import TestClient

    from connectorctl.api import create_app
    from connectorctl.store import retention

    with connector.db.write() as c:
        c.executemany(INSERT_LOG, [log_row(rid(600 + n), "fake", "failed" if n % 3 else "success", 40 * n, timedelta(days=40))
                                   for n in range(30)])

    def counters(client: Any) -> list[str]:
        return sorted(line for line in client.get("/metrics").text.splitlines()
                      if line.startswith(("connectorctl_calls", "connectorctl_call_duration", "connectorctl_rate_limit", "connectorctl_log_rows")))

    with TestClient(create_app(connector)) as before:
        first = counters(before)
        with connector.db.write() as c:
            c.execute(INSERT_LOG, log_row(rid(700), "fake", "success", 12, timedelta(seconds=5)))
        assert retention.purge(connector.db, 30, now=NOW_DT, pause=0)["deleted"] == 30
        with TestClient(create_app(connector)) as after:
            assert counters(before) == counters(after)
            later = counters(after)
    assert "connectorctl_log_rows_scraped_total 45.0" in first and "connectorctl_log_rows_scraped_total 46.0" in later
    assert 'connectorctl_calls_total{service="fake",status="failed"} 20.0' in first
    assert 'connectorctl_calls_total{service="fake",status="failed"} 20.0' in later  # purged, still counted
    assert 'connectorctl_calls_total{service="fake",status="success"} 14.0' in later  # 3 seeded + 10 purged + 1 new


def test_openapi_documents_exactly_the_routes(client: Any) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    routed = {route.path for route in client.app.routes}
    assert set(doc["paths"]) == routed
    logs = {p["name"] for p in doc["paths"]["/api/connector/logs"]["get"]["parameters"]}
    assert logs == {"service", "status", "tenant_id", "date_from", "date_to", "limit", "offset"}


def test_responses_never_contain_secrets_logged_through_the_pipeline(home: Any) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app
    from connectorctl.resilience.pipeline import Call, VendorResponse

    secret, token = "sk_live_TOPSECRET_1234", "tok_VERYSECRET_9876"
    connector = Connector(make_settings(home), clock=FakeClock(NOW))
    call = Call("fake", "send_email", endpoint="https://fake.example.invalid/send", request_data={
        "api_key": secret, "to": "a@example.com", "note": f"key is {secret}", "headers": {"Authorization": f"Bearer {token}"},
    }, secrets=(secret, token))
    connector.pipeline.execute(call, lambda: VendorResponse(None, 200, {"access_token": token, "echo": secret}))
    connector.flush()  # rows are committed by the background writer
    with TestClient(create_app(connector)) as client:
        bodies = [client.get(p).text for p in ("/api/connector/logs", "/api/connector/metrics/fake", "/api/connector/status", "/metrics")]
    logs = bodies[0]
    assert '"to":"a@example.com"' in logs
    for body in bodies:
        assert secret not in body and token not in body and "TOPSECRET" not in body and "VERYSECRET" not in body


def test_status_snapshot_is_shared_within_max_age_and_fresh_with_zero(connector: Connector) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    def add_failures(first: int) -> None:
        with connector.db.write() as c:
            c.executemany(INSERT_LOG, [log_row(rid(first + i), "fake", "failed", 1, _ago(i), http=503) for i in range(3)])

    with TestClient(create_app(connector, status_fresh_seconds=3600)) as cached, TestClient(create_app(connector, status_fresh_seconds=0)) as fresh:
        assert cached.get("/api/connector/status").json()["services"]["fake"]["calls"] == 3
        assert fresh.get("/api/connector/status").json()["services"]["fake"]["calls"] == 3
        add_failures(60)
        assert cached.get("/api/connector/status").json()["services"]["fake"]["calls"] == 3  # the shared result, still within max age
        assert fresh.get("/api/connector/status").json()["services"]["fake"] == {
            "status": "down", "success_rate": 50.0, "avg_duration_ms": 100.5, "circuit_state": "closed", "calls": 6, "attempts": 6, "attempt_success_rate": 50.0, "window_minutes": 15,
        }
