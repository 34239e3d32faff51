"""`connectorctl status`: health from recent success rate and circuit state, exit code 7 when down."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import timedelta

import pytest

from tests.ops.opsdata import Row, insert_rows


pytestmark = pytest.mark.usefixtures("engine")  # the SQL behind these commands runs on both engines

def minutes(m: float) -> timedelta:
    return timedelta(minutes=m)


def calls(service: str, ok: int, failed: int, age: float = 2) -> list[Row]:
    return [Row(minutes(age), service=service)] * ok + [Row(minutes(age), service=service, status="failed", http=503)] * failed


def status_json(cli):
    result = cli("status", "-o", "json")
    return result.exit_code, json.loads(result.stdout)


def test_all_healthy_exits_zero(cli, db_path):
    insert_rows(db_path, calls("alpha", 100, 0) + calls("beta", 99, 1))
    code, body = status_json(cli)
    assert code == 0
    assert body["overall"] == "healthy"
    assert body["services"]["alpha"] == {
        "status": "healthy", "success_rate": 100.0, "avg_duration_ms": 100.0, "calls": 100, "failure_count": 0,
        "attempts": 100, "attempt_success_rate": 100.0, "p95_ms": 100, "circuit_state": "closed", "consecutive_failures": 0,
    }
    assert body["services"]["beta"]["status"] == "healthy"  # 99.0 meets the default 99.0 threshold
    assert body["services"]["file"]["status"] == "healthy" and body["services"]["file"]["success_rate"] is None  # configured, idle


def test_a_send_that_succeeded_after_retries_is_a_success(cli, db_path):
    rows = []
    for n in range(20):  # every call: 503, 503, then accepted
        rows += [Row(minutes(2), status="failed", http=503, attempt=a, correlation=f"call-{n}") for a in (1, 2)]
        rows.append(Row(minutes(2), attempt=3, correlation=f"call-{n}"))
    rows += [Row(minutes(2), service="beta", status="failed", http=503, attempt=a, correlation="lost") for a in (1, 2, 3)]
    rows += [Row(minutes(2), service="beta", correlation=f"ok-{n}") for n in range(3)]
    insert_rows(db_path, rows)
    code, body = status_json(cli)
    alpha, beta = body["services"]["alpha"], body["services"]["beta"]
    assert (alpha["status"], alpha["success_rate"], alpha["calls"]) == ("healthy", 100.0, 20)
    assert (alpha["attempts"], alpha["attempt_success_rate"]) == (60, 33.33)
    assert (beta["calls"], beta["failure_count"], beta["success_rate"], beta["status"]) == (4, 1, 75.0, "down")
    assert code == 7
    table = cli("status").stdout
    assert "alpha    healthy  100.00     20     33.33     60" in table


def test_degraded_still_exits_zero(cli, db_path):
    insert_rows(db_path, calls("alpha", 95, 5))
    code, body = status_json(cli)
    assert (code, body["services"]["alpha"]["status"], body["overall"]) == (0, "degraded", "degraded")


def test_down_exits_seven(cli, db_path):
    insert_rows(db_path, calls("alpha", 80, 20) + calls("beta", 10, 0))
    code, body = status_json(cli)
    assert code == 7
    assert body["services"]["alpha"]["status"] == "down" and body["services"]["beta"]["status"] == "healthy"
    table = cli("status")
    assert table.exit_code == 7 and "down" in table.stdout


def test_only_the_window_counts(cli, db_path):
    insert_rows(db_path, calls("alpha", 0, 50, age=30) + calls("alpha", 10, 0, age=1))
    code, body = status_json(cli)
    assert (code, body["services"]["alpha"]["calls"], body["services"]["alpha"]["status"]) == (0, 10, "healthy")


def test_thresholds_and_window_from_config(cli, db_path, home):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text("status:\n  window_minutes: 60\n  healthy_min_success_rate: 70\n  degraded_min_success_rate: 40\n")
    insert_rows(db_path, calls("alpha", 5, 5, age=30))
    code, body = status_json(cli)
    assert (code, body["window_minutes"], body["services"]["alpha"]["status"]) == (0, 60, "degraded")


def test_open_circuit_means_down_and_jsonl(cli, db_path):
    insert_rows(db_path, calls("alpha", 10, 0))
    assert cli("circuit", "trip", "alpha", "--reason", "maintenance").exit_code == 0
    code, body = status_json(cli)
    assert code == 7 and body["services"]["alpha"]["status"] == "down" and body["services"]["alpha"]["circuit_state"] == "forced_open"
    lines = [json.loads(line) for line in cli("status", "-o", "jsonl").stdout.splitlines()]
    assert {r["service"]: r["status"] for r in lines}["alpha"] == "down"
    cli("circuit", "reset", "alpha")
    assert status_json(cli)[0] == 0


def test_status_as_a_real_process(cli_process, db_path):
    insert_rows(db_path, calls("alpha", 1, 9))
    proc = cli_process("status", "--json")
    assert proc.returncode == 7 and json.loads(proc.stdout)["services"]["alpha"]["status"] == "down"
    assert proc.stderr == ""


def test_open_circuit_past_its_timeout_reads_half_open_and_degraded(db_path):
    from datetime import datetime, timezone

    from connectorctl.config import load_settings
    from connectorctl.store.db import StateDB
    from connectorctl.store.queries import service_status

    with closing(StateDB(db_path)) as db:
        now = datetime.now(timezone.utc).timestamp()
        db.run(lambda c: c.executemany(
            "INSERT INTO circuit_state (service_name, state, open_until, forced_until) VALUES (?, ?, ?, ?)",
            [("alpha", "open", now - 5, None), ("beta", "open", now + 60, None), ("gamma", "forced_open", None, now - 1)],
        ))
        services = service_status(db, load_settings())["services"]
        assert (services["alpha"]["circuit_state"], services["alpha"]["status"]) == ("half_open", "degraded")
        assert (services["beta"]["circuit_state"], services["beta"]["status"]) == ("open", "down")
        assert (services["gamma"]["circuit_state"], services["gamma"]["status"]) == ("half_open", "degraded")  # one probe first
