"""Inbound webhook deliveries share the log table but never count as calls to the vendor."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from connectorctl.errors import ValidationError
from connectorctl.gateway import Connector
from connectorctl.resilience.pipeline import Call, VendorResponse
from connectorctl.store.queries import metrics


def _seed(connector: Connector) -> None:
    for _ in range(3):
        connector.pipeline.execute(Call("stripe", "create_payment", idempotent=True), lambda: VendorResponse(None, 200))

    def forged() -> VendorResponse:
        raise ValidationError("bad signature", service="stripe", http_status=401)

    for _ in range(5):
        try:
            connector.pipeline.execute(Call("stripe", "webhook", direction="inbound"), forged)
        except ValidationError:
            pass
    connector.flush()


def test_metrics_count_outbound_calls_unless_asked(home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    with Connector() as connector:
        _seed(connector)
        now = datetime.now(timezone.utc)
        numbers = metrics(connector.db, "stripe", now - timedelta(days=1), now + timedelta(minutes=1))
    assert (numbers["success_count"], numbers["failure_count"], numbers["success_rate"]) == (3, 0, 100.0)
    outbound = json.loads(cli("metrics", "stripe", "--json", "--buckets", "0").stdout)["metrics"]
    assert (outbound["success_count"], outbound["failure_count"]) == (3, 0)
    inbound = json.loads(cli("metrics", "stripe", "--direction", "inbound", "--json", "--buckets", "0").stdout)["metrics"]
    assert (inbound["success_count"], inbound["failure_count"]) == (0, 5)
    both = json.loads(cli("metrics", "stripe", "--direction", "all", "--json", "--buckets", "0").stdout)["metrics"]
    assert both["total_count"] == 8
    bad = cli("metrics", "stripe", "--direction", "sideways")
    assert bad.exit_code == 2 and "--direction" in bad.stderr


def test_metrics_query_plan_stays_on_the_covering_index(home: Path) -> None:
    with Connector() as connector:
        _seed(connector)
        plan = " ".join(r[-1] for r in connector.db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT duration_ms, count(*) FROM integration_logs WHERE service_name=? AND created_at>=? "
            "AND created_at<=? AND direction='outbound' GROUP BY duration_ms", ("stripe", "2026", "2027")).fetchall())
    assert "COVERING INDEX ix_logs_service_time_cover" in plan, plan


def test_a_mistyped_service_is_flagged_on_stderr_while_stdout_stays_data(home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    for args in (("metrics", "sendgird", "--json"), ("logs", "list", "--service", "sendgird", "--json"), ("logs", "tail", "--service", "sendgird", "-o", "jsonl")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert "no service 'sendgird'" in result.stderr
        if result.stdout.strip():
            json.loads(result.stdout.splitlines()[0] if "jsonl" in args else result.stdout)
    known = cli("metrics", "file", "--json")
    assert "no service" not in known.stderr
