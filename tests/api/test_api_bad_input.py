"""Every bad input is a 4xx JSON error naming the problem: never a 500, never a traceback."""

from __future__ import annotations

from typing import Any

import pytest

CASES = [
    ("/api/connector/logs?date_from=yesterday", 400, "invalid_input", "date_from must be an ISO 8601 date"),
    ("/api/connector/logs?date_to=2025-13-45", 400, "invalid_input", "date_to must be an ISO 8601 date"),
    ("/api/connector/logs?date_from=2027-01-15&date_to=2027-01-01", 400, "invalid_input", "date_from must not be after date_to"),
    ("/api/connector/logs?limit=501", 400, "invalid_input", "limit must be between 1 and 500, got 501"),
    ("/api/connector/logs?limit=0", 400, "invalid_input", "limit must be between 1 and 500, got 0"),
    ("/api/connector/logs?limit=ten", 400, "invalid_input", "limit must be an integer, got 'ten'"),
    ("/api/connector/logs?offset=abc", 400, "invalid_input", "offset must be an integer, got 'abc'"),
    ("/api/connector/logs?offset=-1", 400, "invalid_input", "offset must be 0 or more, got -1"),
    ("/api/connector/logs?offset=1e3", 400, "invalid_input", "offset must be an integer"),
    ("/api/connector/logs?status=exploded", 400, "invalid_input", "status must be one of success, failed, timeout, rate_limited, circuit_open"),
    ("/api/connector/logs?service=nosuchvendor", 404, "not_found", "unknown service 'nosuchvendor'"),
    ("/api/connector/metrics/nosuchvendor", 404, "not_found", "unknown service 'nosuchvendor'"),
    ("/api/connector/metrics/fake?from=last-tuesday", 400, "invalid_input", "invalid from 'last-tuesday'"),
    ("/api/connector/metrics/fake?to=2027-02-30", 400, "invalid_input", "invalid to '2027-02-30'"),
    ("/api/connector/metrics/fake?from=-1days&to=-3days", 400, "invalid_input", "from must not be after to"),
    ("/api/connector/metrics/fake?from=-99999999999999days", 400, "invalid_input", "from is out of range"),
    ("/api/connector/logs?date_from=9999-12-31T23:59:59-05:00", 400, "invalid_input", "date_from must be an ISO 8601 date"),
    ("/api/connector/nothing-here", 404, "not_found", "no such endpoint: /api/connector/nothing-here"),
]


@pytest.mark.parametrize(("path", "status", "code", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_json_4xx_that_says_what_is_wrong(client: Any, path: str, status: int, code: str, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]
    assert "Traceback" not in response.text


def test_wrong_method_is_a_json_405(client: Any) -> None:
    response = client.post("/api/connector/logs", json={})
    assert response.status_code == 405
    assert response.json()["error"] == {"code": "method_not_allowed", "message": "POST is not allowed on /api/connector/logs"}


def test_an_unexpected_failure_is_a_bare_500_without_internals(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectorctl.store import queries

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail /etc/passwd")

    monkeypatch.setattr(queries, "list_logs", broken)
    response = client.get("/api/connector/logs")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal server error"}}
    assert "secret internal detail" not in response.text
