"""`connectorctl logs list|show|tail`: every filter and time form, the limit cap, JSON contracts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from tests.ops.opsdata import SEED, Row, insert_rows, iso


pytestmark = pytest.mark.usefixtures("engine")  # the SQL behind these commands runs on both engines

def ids_of(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.stdout)["data"]]


def test_list_newest_first_with_reference_shape(cli, seeded):
    from connectorctl.store.queries import LOG_COLUMNS

    result = cli("logs", "list", "-o", "json")
    body = json.loads(result.stdout)
    assert body["meta"] == {"limit": 100, "offset": 0, "count": len(SEED)}
    assert list(body["data"][0]) == list(LOG_COLUMNS)  # the API's full row, so json and jsonl agree
    times = [r["created_at"] for r in body["data"]]
    assert times == sorted(times, reverse=True)
    assert body["data"][0]["id"] == seeded[9]  # beta, 30 minutes ago


def test_json_and_jsonl_carry_the_same_rows_with_payloads_as_objects(cli, seeded):
    page = json.loads(cli("logs", "list", "-o", "json").stdout)["data"]
    lines = [json.loads(line) for line in cli("logs", "list", "-o", "jsonl").stdout.splitlines()]
    assert lines == page
    tail = [json.loads(line) for line in cli("logs", "tail", "-n", "3", "-o", "jsonl").stdout.splitlines()]
    assert tail == list(reversed(page[:3]))
    with_payload = [r for r in page if r["request_data"] is not None]
    assert with_payload and all(isinstance(r["request_data"], dict) for r in with_payload)
    shown = json.loads(cli("logs", "show", with_payload[0]["id"], "-o", "json").stdout)
    assert shown == with_payload[0]
    assert all(r["created_at"].endswith("Z") and "T" in r["created_at"] for r in page)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--service", "beta"), {9, 10}),
        (("--status", "failed"), {2, 8, 10}),
        (("--service", "alpha", "--status", "timeout"), {4}),
        (("--tenant", "t2"), {1, 2, 3}),
        (("--operation", "verify_credentials"), {4}),
        (("--since", "4h"), {0, 1, 2, 3, 9}),
        (("--since", "-4days", "--service", "alpha"), {0, 1, 2, 3, 4, 5, 6}),
        (("--since", "80h", "--until", "20 hours"), {4, 5, 6}),
        (("--since", "90m"), {0, 9}),
        (("--until", "30d"), {8}),
        (("--since", "1w", "--status", "success", "--service", "alpha"), {0, 1, 3}),
    ],
)
def test_list_filters(cli, seeded, args, expected):
    assert set(ids_of(cli("logs", "list", "-o", "json", *args))) == {seeded[i] for i in expected}


def test_list_iso_since_until_naive_and_zulu(cli, seeded):
    now = datetime.now(timezone.utc)
    since = iso(now - timedelta(hours=25))  # ...Z form
    until = (now - timedelta(hours=1.5)).replace(tzinfo=None).isoformat()  # naive = UTC
    assert set(ids_of(cli("logs", "list", "-o", "json", "--since", since, "--until", until))) == {seeded[i] for i in (1, 2, 3, 4, 10)}


def test_list_correlation_id(cli, seeded):
    assert ids_of(cli("logs", "list", "-o", "json", "--correlation-id", f"corr-{seeded[5]}")) == [seeded[5]]


def test_list_limit_offset_and_the_cap_of_500(cli, db_path):
    insert_rows(db_path, [Row(timedelta(seconds=i)) for i in range(520)])
    assert len(ids_of(cli("logs", "list", "-o", "json", "--limit", "500"))) == 500
    page1 = ids_of(cli("logs", "list", "-o", "json", "--limit", "7"))
    page2 = ids_of(cli("logs", "list", "-o", "json", "--limit", "7", "--offset", "7"))
    both = ids_of(cli("logs", "list", "-o", "json", "--limit", "14"))
    assert page1 + page2 == both
    for bad in (("--limit", "501"), ("--limit", "0"), ("--offset", "-1")):
        result = cli("logs", "list", *bad)
        assert result.exit_code == 2
        assert "Traceback" not in result.output and result.stdout == ""
    assert "between 1 and 500" in cli("logs", "list", "--limit", "501").stderr


def test_list_jsonl_one_object_per_line(cli, seeded):
    result = cli("logs", "list", "-o", "jsonl", "--service", "beta")
    lines = result.stdout.strip().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [seeded[9], seeded[10]]


@pytest.mark.parametrize("args", [("--since", "yesterday"), ("--until", "soon"), ("--status", "broken"), ("--since", "1h", "--until", "2h")])
def test_list_bad_filters_are_one_line_errors(cli, seeded, args):
    result = cli("logs", "list", *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_list_table_shows_rows(cli, seeded):
    result = cli("logs", "list", "--service", "beta")
    assert result.exit_code == 0
    assert seeded[10] in result.stdout and "HTTP 500" in result.stdout


def test_show_full_row_with_redacted_data(cli, seeded):
    result = cli("logs", "show", seeded[2], "--json")
    row = json.loads(result.stdout)
    assert row["status"] == "failed" and row["http_status_code"] == 503 and row["attempt_number"] == 1
    assert row["request_data"] == {"to": "a@example.com", "api_key": "[REDACTED]"}
    assert row["correlation_id"] == f"corr-{seeded[2]}"
    table = cli("logs", "show", seeded[2])
    assert table.exit_code == 0 and "HTTP 503" in table.stdout and "[REDACTED]" in table.stdout


def test_show_unknown_id(cli, seeded):
    result = cli("logs", "show", "01NOPE")
    assert result.exit_code == 1
    assert "not_found" in result.stderr and result.stdout == ""


def test_tail_newest_last_with_filters(cli, seeded):
    result = cli("logs", "tail", "-n", "3", "-o", "jsonl")
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == [seeded[1], seeded[0], seeded[9]]
    result = cli("logs", "tail", "-n", "5", "--service", "alpha", "--status", "failed", "-o", "json")
    assert [r["id"] for r in json.loads(result.stdout)] == [seeded[8], seeded[2]]
    result = cli("logs", "tail", "--tenant", "t2", "--since", "1d", "-o", "json")
    assert [r["id"] for r in json.loads(result.stdout)] == [seeded[2], seeded[3], seeded[1]]
    assert [r["id"] for r in json.loads(cli("logs", "tail", "--until", "47h", "-n", "1", "--json").stdout)] == [seeded[5]]


def test_tail_follow_refuses_plain_json(cli, seeded):
    result = cli("logs", "tail", "-f", "-o", "json")
    assert result.exit_code == 2 and "jsonl" in result.stderr


def test_queries_parse_time_forms():
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.queries import parse_duration, parse_time

    now = datetime(2026, 1, 10, 12, 0, tzinfo=timezone.utc)
    assert parse_time("7d", now) == now - timedelta(days=7)
    assert parse_time("-30days", now) == now - timedelta(days=30)
    assert parse_time("90m", now) == now - timedelta(minutes=90)
    assert parse_time("2 weeks", now) == now - timedelta(days=14)
    assert parse_time("now", now) == now
    assert parse_time("2026-01-01T00:00:00Z", now) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_time("2026-01-01T02:00:00+02:00", now) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_time("2026-01-01", now) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_duration("10m") == 600 and parse_duration("1.5h") == 5400
    for bad in ("-10m", "0s", "ten minutes", ""):
        with pytest.raises(InvalidInputError):
            parse_duration(bad)
