"""No vendor send without an audit row when the state database fails (the local audit spool).

A call whose row the database refuses has it kept in a local SQLite spool and returns normally; the next
calls are refused before any vendor request while the database is known down; the spool drains into the
database (same ids, no duplicates) once it answers again.  The PostgreSQL outage itself is
tests/test_scale_out.py's stop-mid-run test; here SQLite's locked file, the spool's own guarantees and what
an operator sees.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import StateStoreError
from connectorctl.gateway import Connector
from connectorctl.store.db import StateDB
from connectorctl.store.logs import insert_rows
from connectorctl.store.spool import AuditSpool
from tests.conftest import ROOT, CliResult, write_config

MESSAGE = EmailMessage(to=("a@example.com",), subject="s", text="hi")


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short lock waits and probes, so an outage and its end take milliseconds."""
    monkeypatch.setenv("CONNECTORCTL_BUSY_TIMEOUT_MS", "150")
    monkeypatch.setattr("connectorctl.store.outage.PROBE_INTERVAL_SECONDS", 0.05)


@pytest.fixture
def write_lock(home: Path) -> Iterator[Callable[[], None]]:
    """Another connection takes the database's write lock and keeps it past the busy timeout; call to release."""
    StateDB(home / "connectorctl.db").close()
    holder = sqlite3.connect(str(home / "connectorctl.db"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield lambda: holder.execute("ROLLBACK") if holder.in_transaction else None
    holder.close()


def sent(home: Path) -> int:
    return len(list((home / "outbox").glob("*.eml")))


def log_rows(db: StateDB) -> tuple[int, int]:
    return db.run(lambda c: c.execute("SELECT count(*), count(DISTINCT id) FROM integration_logs").fetchone())


@pytest.mark.parametrize("outage", ["locked", "read-only"])
def test_an_unwritable_sqlite_spools_refuses_then_drains_on_the_next_commit(
    home: Path, quick: None, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, outage: str
) -> None:
    write_config(home, "email_vendor: file\n")
    with Connector() as connector:
        if outage == "locked":
            end_outage = request.getfixturevalue("write_lock")
        else:  # what SQLite reports for a read-only file, even to root
            connector.db.run(lambda c: c.execute("PRAGMA query_only=ON"))
            end_outage = lambda: connector.db.run(lambda c: c.execute("PRAGMA query_only=OFF"))  # noqa: E731
        email = connector.email()
        first = email.send(MESSAGE)  # the vendor acted; its row cannot be committed
        assert first.ok and sent(home) == 1
        spool = connector.audit_spool
        assert spool.path == home / "connectorctl.db.audit-spool" and spool.count(connector.db.label) == 1
        assert "audit rows are kept in" in capsys.readouterr().err
        for _ in range(3):  # known down: refused before any vendor request
            with pytest.raises(StateStoreError, match="stayed locked|read-only") as refused:
                email.send(MESSAGE)
            assert refused.value.code == "state_unavailable" and refused.value.exit_code == 6
        assert sent(home) == 1
        end_outage()
        time.sleep(0.1)  # the next probe is due
        second = email.send(MESSAGE)  # the probe drains the spool, then the send goes out
        assert second.ok and sent(home) == 2
        assert spool.count(connector.db.label) == 0
        assert log_rows(connector.db) == (2, 2)
        ids = {r[0] for r in connector.db.run(lambda c: c.execute("SELECT correlation_id FROM integration_logs"))}
        assert ids == {first.correlation_id, second.correlation_id}


_SPOOL_THEN_WAIT = """
import sys, time
from connectorctl.domain.messages import EmailMessage
from connectorctl.gateway import Connector
c = Connector()
result = c.email().send(EmailMessage(to=("a@example.com",), subject="s", text="hi"))
print(result.correlation_id, flush=True)
time.sleep(60)
"""


def test_kill_9_after_a_spooled_send_loses_nothing_blocks_new_sends_and_the_operator_sees_and_drains_it(
    home: Path, quick: None, write_lock: Callable[[], None], cli: Callable[..., CliResult]
) -> None:
    write_config(home, "email_vendor: file\n")
    proc = subprocess.Popen([sys.executable, "-c", _SPOOL_THEN_WAIT], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        correlation_id = proc.stdout.readline().strip()  # the send returned to its caller ...
        assert correlation_id, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)  # ... and its process dies before anything could drain the spool
        proc.wait()
    assert sent(home) == 1

    refused = cli("send", "email", "--to", "b@example.com", "--subject", "s", "--body", "b")
    assert refused.exit_code == 6 and "state_unavailable" in refused.stderr and "stayed locked" in refused.stderr
    assert sent(home) == 1  # a new process finds the row its predecessor spooled: it probes before it sends
    check = cli("db", "check")  # the database still refuses: exit 6, and the operator is told rows wait
    assert check.exit_code == 6 and "1 integration-log rows wait in the audit spool" in check.stderr
    assert "Traceback" not in check.output and len(check.stdout) == 0
    write_lock()

    status = cli("status", "-o", "json")
    assert json.loads(status.stdout)["audit_spool"] == {"path": str(home / "connectorctl.db.audit-spool"), "rows": 1}
    assert "audit spool: 1 log rows wait" in cli("status").stdout
    drained = cli("db", "drain-spool", "-o", "json")
    assert drained.exit_code == 0, drained.output
    assert json.loads(drained.stdout)["spool_drained"] == 1 and json.loads(drained.stdout)["spooled_rows"] == 0
    again = json.loads(cli("db", "check", "-o", "json").stdout)
    assert (again["spool_drained"], again["spooled_rows"]) == (0, 0)
    db = StateDB(home / "connectorctl.db")
    assert db.run(lambda c: c.execute("SELECT correlation_id, status FROM integration_logs").fetchall()) == [
        (correlation_id, "success")
    ]


def test_prometheus_shows_the_rows_waiting_in_the_spool(home: Path) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    write_config(home, "email_vendor: file\n")
    with Connector() as connector:
        connector.audit_spool.append(connector.db.label, [_row("01SPOOLED0000000000000001")])
        with TestClient(create_app(connector)) as client:
            assert "connectorctl_audit_spool_rows 1.0" in client.get("/metrics").text.splitlines()


def _row(row_id: str) -> tuple[Any, ...]:
    return (row_id, None, "file", "send_email", "file://", "POST", "success", 200, 5, None, None, None, None, 1,
            "corr-" + row_id, "outbound", "2026-01-02T03:04:05.678Z")


def test_a_replay_is_idempotent_and_only_drains_its_own_database(state_target: Path | str, home: Path) -> None:
    db = StateDB(state_target)
    spool = AuditSpool(home / "spool.db")
    rows = [_row(f"01REPLAY{n:018d}") for n in range(3)]
    spool.append(db.label, rows)
    spool.append("postgresql://elsewhere:5432/other", [_row("01OTHER000000000000000000")])
    insert_rows(db, rows[:2])  # a drain that died after the database committed, before the spool forgot
    assert spool.drain(db) == 3
    assert spool.drain(db) == 0
    assert log_rows(db) == (3, 3)
    assert spool.count(db.label) == 0 and spool.count("postgresql://elsewhere:5432/other") == 1


def _append_many(path: str, worker: int) -> None:
    spool = AuditSpool(Path(path))
    for n in range(25):
        spool.append("db", [_row(f"01W{worker}{n:021d}")])


def test_processes_share_one_spool_file(home: Path) -> None:
    path = home / "shared-spool.db"
    home.mkdir(parents=True, exist_ok=True)
    procs = [multiprocessing.get_context("fork").Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * 4
    assert AuditSpool(path).count("db") == 100


def test_when_even_the_spool_fails_the_send_returns_with_a_warning(
    home: Path, quick: None, write_lock: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(home, f"email_vendor: file\naudit_spool: {home / 'not-a-folder' / 'spool.db'}\n")
    with Connector() as connector:
        (home / "not-a-folder").write_text("")  # after the config was read, which would refuse such a spool
        assert connector.email().send(MESSAGE).ok
        assert "integration log not written (1 rows)" in capsys.readouterr().err
        with pytest.raises(StateStoreError):  # and the next send is still refused while the database is down
            connector.email().send(MESSAGE)
    assert sent(home) == 1


def test_outbox_work_drains_what_an_exited_process_left_in_the_spool(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    write_config(home, "email_vendor: file\n")
    with Connector() as connector:
        connector.audit_spool.append(connector.db.label, [_row("01LEFTOVER000000000000001")])
    result = cli("outbox", "work", "--once")
    assert result.exit_code == 0 and "1 spooled log rows moved into the database" in result.stderr
    db = StateDB(home / "connectorctl.db")
    assert log_rows(db) == (1, 1) and AuditSpool(home / "connectorctl.db.audit-spool").count(db.label) == 0
