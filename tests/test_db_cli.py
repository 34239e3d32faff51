"""`connectorctl db migrate|check|copy`, and `database:` pointing at PostgreSQL from the config file."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.conftest import write_config
from tests.ops.opsdata import Row, h, insert_rows
from tests.support import run_on


@pytest.mark.usefixtures("engine")
def test_check_and_migrate_report_the_schema_on_both_engines(cli, engine: str) -> None:
    migrated = cli("db", "migrate", "-o", "json")
    assert migrated.exit_code == 0, migrated.stderr
    report = json.loads(cli("db", "check", "-o", "json").stdout)
    assert report["engine"] == engine and report["reachable"] is True and report["pending_migrations"] == []
    assert report["schema_version"] == json.loads(migrated.stdout)["schema_version"] >= 73
    assert report["tables"]["integration_logs"] == 0 and "circuit_state" in report["tables"]
    assert json.loads(cli("db", "migrate", "-o", "json").stdout)["applied"] == []  # once only


def test_an_unreachable_postgres_is_one_clear_line_and_exit_6(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", "postgresql://connectorctl:hunter2-secret@127.0.0.1:1/nowhere")
    monkeypatch.setenv("CONNECTORCTL_BUSY_TIMEOUT_MS", "300")
    for args in (("db", "check"), ("logs", "list")):
        result = cli(*args)
        assert result.exit_code == 6 and result.stdout == ""
        assert "postgresql://127.0.0.1:1/nowhere is unreachable" in result.stderr and "Traceback" not in result.stderr
        assert "hunter2-secret" not in result.output
    assert not [t.name for t in threading.enumerate() if t.name.startswith("connectorctl-")]  # no pool left retrying


def test_a_database_the_server_refuses_is_named_with_the_servers_reason_at_once(
    cli, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", postgres_url.rsplit("/", 1)[0] + "/no_such_database")
    monkeypatch.setenv("CONNECTORCTL_BUSY_TIMEOUT_MS", "60000")  # how long a connection pool would keep retrying
    started = time.monotonic()
    result = cli("db", "check")
    assert result.exit_code == 6 and result.stdout == ""
    assert 'refused the connection (database "no_such_database" does not exist)' in result.stderr
    assert "user, the password and the database name" in result.stderr
    assert time.monotonic() - started < 30  # not after the pool's 60 s of retries


def test_database_in_the_config_file_may_be_a_postgres_url(cli, home: Path, postgres_url: str) -> None:
    write_config(home, f"database: {postgres_url}\nemail_vendor: file\n")
    sent = cli("send", "email", "--to", "a@example.com", "--subject", "hi", "--body", "t", "-o", "json")
    assert sent.exit_code == 0, sent.stderr
    assert _sessions_left(postgres_url) == 0  # a CLI run inside a long-lived process keeps no connection open
    assert run_on(postgres_url, lambda c: c.execute("SELECT count(*) FROM integration_logs").fetchone()[0]) == 1
    assert not (home / "connectorctl.db").exists()


def _sessions_left(url: str) -> int:
    """Sessions on ``url``'s database besides this one, once the server has ended those already closed."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(100):
            left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid()").fetchone()[0]
            if left == 0:
                break
            time.sleep(0.05)
    return left


def test_copy_moves_a_sqlite_installation_to_postgres_resumably(cli, home: Path, postgres_server) -> None:
    write_config(home, "email_vendor: file\n")
    ids = insert_rows(home / "connectorctl.db", [Row(h(i)) for i in range(250)])
    for n in range(3):
        assert cli("send", "email", "--to", f"u{n}@example.com", "--subject", "hi", "--body", "t").exit_code == 0
    assert cli("circuit", "trip", "file", "--reason", "moving").exit_code == 0
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE copy_target")  # empty: copy runs the migrations itself
    target = postgres_server.url("copy_target")
    try:
        first = cli("db", "copy", "--to", target, "--batch-size", "100", "-o", "json")
        assert first.exit_code == 0, first.stderr
        tables = {t["table"]: t for t in json.loads(first.stdout)["tables"]}
        assert tables["integration_logs"]["source_rows"] == tables["integration_logs"]["target_rows"] == 253
        assert all(t["source_rows"] == t["target_rows"] for t in tables.values())
        assert (tables["circuit_state"]["target_rows"], tables["messages"]["target_rows"]) == (1, 3)
        counted = run_on(target, lambda c: c.execute("SELECT sum(count) FROM log_totals").fetchone()[0])
        assert counted == 253  # the Prometheus totals came over once, not once more by the target's trigger
        again = json.loads(cli("db", "copy", "--to", target, "-o", "json").stdout)  # a second run resumes: nothing twice
        assert {t["table"]: t["target_rows"] for t in again["tables"]} == {n: t["target_rows"] for n, t in tables.items()}
        assert sum(t["copied"] for t in again["tables"]) == 0

        write_config(home, f"database: {target}\nemail_vendor: file\n")
        listed = json.loads(cli("logs", "list", "--limit", "500", "-o", "json").stdout)["data"]
        assert set(ids) <= {r["id"] for r in listed} and len(listed) == 253
        assert json.loads(cli("circuit", "show", "file", "-o", "json").stdout)["state"] == "forced_open"
        assert cli("circuit", "reset", "file").exit_code == 0
        assert cli("send", "email", "--to", "new@example.com", "--subject", "hi", "--body", "t").exit_code == 0  # new ids follow
        assert run_on(target, lambda c: c.execute("SELECT count(*) FROM integration_logs").fetchone()[0]) == 254
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute("DROP DATABASE copy_target WITH (FORCE)")


def test_copy_refuses_a_password_on_the_command_line(cli) -> None:
    result = cli("db", "copy", "--to", "postgresql://me:s3cret@127.0.0.1/db")
    assert result.exit_code == 2 and "process list" in result.stderr and "s3cret" not in result.output
