"""The failure breakdown of `metrics` reads only the failed rows of a service, from an index alone."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from connectorctl.errors import ConnectorError, RateLimitedError, VendorTimeoutError, VendorUnavailableError
from connectorctl.gateway import Connector
from connectorctl.resilience.pipeline import Call, VendorResponse
from connectorctl.store.queries import LogFilter, metrics_for
from tests.conftest import write_config

pytestmark = pytest.mark.usefixtures("engine")

_BREAKDOWN = (
    "SELECT status, http_status_code, count(*) FROM integration_logs WHERE service_name = ? AND created_at >= ? "
    "AND created_at <= ? AND status IN ('failed', 'timeout', 'rate_limited', 'circuit_open') "
    "GROUP BY status, http_status_code"
)


def _seed(connector: Connector) -> None:
    """6 successes and 4 failures, one attempt each."""
    outcomes: list[ConnectorError | None] = [None] * 6 + [
        VendorUnavailableError("down", service="stripe", http_status=503),
        VendorUnavailableError("down", service="stripe", http_status=502),
        RateLimitedError("slow down", service="stripe", http_status=429),
        VendorTimeoutError("no answer", service="stripe"),
    ]
    for outcome in outcomes:
        def attempt(outcome: ConnectorError | None = outcome) -> VendorResponse:
            if outcome is not None:
                raise outcome
            return VendorResponse(None, 200)

        try:
            connector.pipeline.execute(Call("stripe", "create_payment"), attempt)
        except ConnectorError:
            pass
    connector.flush()


def test_failures_are_broken_down_by_status_and_http_class(home) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "retry_policy: {max_attempts: 1}\n")
    with Connector() as connector:
        _seed(connector)
        now = datetime.now(timezone.utc)
        numbers = metrics_for(connector.db, LogFilter(service="stripe", since=now - timedelta(hours=1), until=now))
    assert (numbers["success_count"], numbers["failure_count"]) == (6, 4)
    assert numbers["failures_by_status"] == {"failed": 2, "timeout": 1, "rate_limited": 1, "circuit_open": 0}
    assert numbers["failures_by_http_class"] == {"4xx": 1, "5xx": 2, "none": 1}


def test_the_breakdown_needs_no_table_access(home) -> None:  # type: ignore[no-untyped-def]
    with Connector() as connector:
        _seed(connector)
        params = ("stripe", "2026-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
        if connector.db.engine == "postgresql":  # a table this small is cheaper to scan: ask what the index can do
            def explain(c):  # type: ignore[no-untyped-def]
                c.execute("BEGIN")
                c.execute("SET LOCAL enable_seqscan = off")
                c.execute("SET LOCAL enable_bitmapscan = off")
                plan = c.execute("EXPLAIN " + _BREAKDOWN, params).fetchall()
                c.execute("COMMIT")
                return " ".join(r[0] for r in plan)

            plan = connector.db.run(explain)
            assert "Index Only Scan using ix_logs_service_status_time" in plan, plan
        else:
            plan = " ".join(r[-1] for r in connector.db.conn.execute("EXPLAIN QUERY PLAN " + _BREAKDOWN, params))
            assert "COVERING INDEX ix_logs_service_status_time" in plan, plan
