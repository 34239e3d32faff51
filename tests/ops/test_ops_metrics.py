"""`connectorctl metrics`: the reference definitions checked against hand-computed values."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from tests.ops.opsdata import Row, insert_rows

# alpha, last 7 days (see SEED): durations 100, 200, 300, 400, 5000, 50, 0; successes 100, 200, 400
ALPHA_7D = {
    "success_count": 3,
    "failure_count": 4,
    "success_rate": 42.86,  # 3 / 7 * 100
    "avg_duration_ms": 864.3,  # 6050 / 7
    "total_count": 7,
    "retry_count": 1,
    "p50_ms": 200,  # nearest rank ceil(0.5 * 7) = 4th of 0, 50, 100, 200, 300, 400, 5000
    "p95_ms": 5000,  # ceil(6.65) = 7th
    "p99_ms": 5000,
    "failures_by_status": {"failed": 1, "timeout": 1, "rate_limited": 1, "circuit_open": 1},
    "failures_by_http_class": {"4xx": 1, "5xx": 1, "none": 2},
}


def run_json(cli, *args):
    result = cli("metrics", *args, "-o", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_one_service_default_seven_days(cli, seeded):
    body = run_json(cli, "alpha")
    assert body["service"] == "alpha"
    assert set(body["period"]) == {"from", "to"}
    assert body["metrics"] == ALPHA_7D


def test_reference_minus_30days_form_and_iso(cli, seeded):
    m = run_json(cli, "alpha", "--since", "-30days")["metrics"]
    # adds the 10-day-old success (150 ms): 4 of 8, avg 6200 / 8
    assert (m["success_count"], m["failure_count"], m["success_rate"], m["avg_duration_ms"]) == (4, 4, 50.0, 775.0)
    since = (datetime.now(timezone.utc) - timedelta(days=60)).isoformat()
    m = run_json(cli, "alpha", "--from", since, "--until", "20d")["metrics"]
    assert (m["total_count"], m["failure_count"], m["failures_by_http_class"]["4xx"]) == (1, 1, 1)


def test_until_and_tenant_filters(cli, seeded):
    m = run_json(cli, "alpha", "--since", "4h", "--until", "90m")["metrics"]
    assert (m["total_count"], m["success_count"], m["p50_ms"]) == (3, 2, 300)  # 200, 300(failed), 400
    m = run_json(cli, "alpha", "--tenant", "t2")["metrics"]
    assert (m["total_count"], m["success_rate"], m["retry_count"]) == (3, 66.67, 1)


def test_no_calls_gives_zero_rate(cli, seeded):
    m = run_json(cli, "gamma")["metrics"]
    assert (m["success_count"], m["failure_count"], m["success_rate"], m["avg_duration_ms"], m["p95_ms"]) == (0, 0, 0.0, 0.0, None)


def test_all_services_grouped_busiest_first(cli, seeded):
    body = run_json(cli)
    assert body["by"] == "service"
    groups = {g["key"]: g["metrics"] for g in body["groups"]}
    assert [g["key"] for g in body["groups"]] == ["alpha", "beta"]
    assert groups["alpha"] == ALPHA_7D
    assert groups["beta"]["success_rate"] == 50.0 and groups["beta"]["failures_by_http_class"]["5xx"] == 1
    assert groups["beta"]["avg_duration_ms"] == 480.0


@pytest.mark.parametrize(("by", "key", "total", "success"), [("operation", "verify_credentials", 1, 0), ("operation", "send_email", 6, 3), ("tenant", "t2", 3, 2), ("tenant", None, 1, 0)])
def test_group_by_operation_and_tenant(cli, seeded, by, key, total, success):
    groups = {g["key"]: g["metrics"] for g in run_json(cli, "alpha", "--by", by)["groups"]}
    assert (groups[key]["total_count"], groups[key]["success_count"]) == (total, success)


def test_jsonl_rows_and_bad_input(cli, seeded):
    result = cli("metrics", "--by", "tenant", "-o", "jsonl")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["key"] for r in rows} == {"t1", "t2", None}
    assert sum(r["total_count"] for r in rows) == 9  # alpha 7 + beta 2 inside 7 days
    for args in (("--by", "color"), ("--since", "last week"), ("--since", "1d", "--until", "2d")):
        bad = cli("metrics", *args)
        assert bad.exit_code == 2 and bad.stdout == "" and "Traceback" not in bad.stderr


def test_series_buckets_count_every_row_once(cli, db_path):
    insert_rows(db_path, [Row(timedelta(minutes=m), status="failed" if m % 3 == 0 else "success", http=500) for m in range(1, 60)])
    body = run_json(cli, "alpha", "--since", "1h", "--buckets", "6")
    series = body["series"]
    assert len(series) == 6
    assert sum(p["calls"] for p in series) == 59 == body["metrics"]["total_count"]
    assert sum(p["failures"] for p in series) == 19 == body["metrics"]["failure_count"]
    assert all(p["error_rate"] == round(p["failures"] * 100 / p["calls"], 2) for p in series if p["calls"])


def test_table_has_breakdown_and_chart(cli, seeded):
    result = cli("metrics", "alpha")
    assert result.exit_code == 0
    for text in ("42.86", "864.3", "200 / 5000 / 5000", "failed=1", "4xx=1", "volume", "error rate"):
        assert text in result.stdout
    assert cli("metrics", "--by", "service").stdout.count("alpha") >= 1


def test_library_metrics_signature_unchanged(seeded, db_path):
    from connectorctl.store.db import StateDB
    from connectorctl.store.queries import metrics

    now = datetime.now(timezone.utc)
    assert metrics(StateDB(db_path), "alpha", now - timedelta(days=7), now) == {k: ALPHA_7D[k] for k in (
        "success_count", "failure_count", "success_rate", "avg_duration_ms", "retry_count", "p50_ms", "p95_ms", "p99_ms")}
