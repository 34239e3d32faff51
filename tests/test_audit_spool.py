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
from contextlib import closing
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
    assert check.exit_code == 6 and "1 integration-log row waits in the audit spool" in check.stderr
    assert "Traceback" not in check.output and len(check.stdout) == 0
    write_lock()

    status = cli("status", "-o", "json")
    spool = {"path": str(home / "connectorctl.db.audit-spool"), "rows": 1, "error": None}
    assert json.loads(status.stdout)["audit_spool"] == spool
    assert "audit spool: 1 log row waits in" in cli("status").stdout
    drained = cli("db", "drain-spool", "-o", "json")
    assert drained.exit_code == 0, drained.output
    empty = {**spool, "rows": 0}  # one shape for the spool in every command's JSON
    assert (json.loads(drained.stdout)["spool_drained"], json.loads(drained.stdout)["audit_spool"]) == (1, empty)
    again = json.loads(cli("db", "check", "-o", "json").stdout)
    assert (again["spool_drained"], again["audit_spool"]) == (0, empty)
    table = [line.split() for line in cli("db", "check").stdout.splitlines()]
    assert ["audit_spool", empty["path"]] in table and ["spooled_rows", "0"] in table
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
    with closing(StateDB(state_target)) as db:
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
        assert "integration log not written (1 log row)" in capsys.readouterr().err
        with pytest.raises(StateStoreError):  # and the next send is still refused while the database is down
            connector.email().send(MESSAGE)
    assert sent(home) == 1


def test_a_spool_path_the_file_system_cannot_name_is_a_spool_that_fails_not_a_failed_send(
    home: Path, quick: None, write_lock: Callable[[], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """The vendor has acted: however the spool fails, the call returns (a library caller's Settings are not
    checked like a config file's)."""
    import dataclasses

    from connectorctl.config import load_settings

    write_config(home, "email_vendor: file\n")
    settings = dataclasses.replace(load_settings(), audit_spool=str(home / "spool\x00.db"))
    with Connector(settings) as connector:
        assert connector.email().send(MESSAGE).ok
    assert "integration log not written (1 log row)" in capsys.readouterr().err
    assert sent(home) == 1


def test_a_row_spooled_while_a_probe_drains_is_drained_by_the_next_commit(home: Path, quick: None) -> None:
    """Another thread's insert failed just before the probe found the database back, and its row reached the
    spool after the probe had emptied it: the process must still know that a row waits."""
    write_config(home, "email_vendor: file\n")
    with Connector() as connector:
        email = connector.email()
        assert email.send(MESSAGE).ok
        spool, writer = connector.audit_spool, connector.log_writer
        drain, late = spool.drain, [_row("01LATECOMER00000000000001")]

        def drain_then_a_late_row(db: StateDB) -> int:
            moved = drain(db)
            if late:
                writer._spool([late.pop()], StateStoreError("locked a moment ago"))  # what that thread runs
            return moved

        spool.drain = drain_then_a_late_row  # type: ignore[method-assign]
        connector.db.health.mark_down(StateStoreError("locked"))
        time.sleep(0.1)  # the next probe is due
        assert email.send(MESSAGE).ok  # it probes (the late row lands), sends, commits its own row
        assert spool.count(connector.db.label) == 0
        assert log_rows(connector.db) == (3, 3)


def test_outbox_work_drains_what_an_exited_process_left_in_the_spool(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    write_config(home, "email_vendor: file\n")
    with Connector() as connector:
        connector.audit_spool.append(connector.db.label, [_row("01LEFTOVER000000000000001")])
    result = cli("outbox", "work", "--once")
    assert result.exit_code == 0 and "1 spooled log row moved into the database" in result.stderr
    db = StateDB(home / "connectorctl.db")
    assert log_rows(db) == (1, 1) and AuditSpool(home / "connectorctl.db.audit-spool").count(db.label) == 0


def test_two_installations_with_the_same_relative_database_path_never_drain_each_others_rows(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    """`database: state.db` is a different file in each working folder; one shared spool must keep them apart."""
    write_config(home, f"email_vendor: file\ndatabase: state.db\naudit_spool: {home / 'shared-spool.db'}\n")
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    with Connector() as connector:  # what the writer does when a's database refuses the row
        connector.audit_spool.append(connector.db.label, [_row("01INSTALLATIONA0000000001")])
    monkeypatch.chdir(tmp_path / "b")
    elsewhere = cli("db", "drain-spool", "-o", "json")
    assert elsewhere.exit_code == 0 and json.loads(elsewhere.stdout)["spool_drained"] == 0, elsewhere.output
    assert log_rows(StateDB(tmp_path / "b" / "state.db")) == (0, 0)
    monkeypatch.chdir(tmp_path / "a")
    assert json.loads(cli("db", "drain-spool", "-o", "json").stdout)["spool_drained"] == 1
    assert log_rows(StateDB(tmp_path / "a" / "state.db")) == (1, 1)


def test_the_spool_path_is_shown_whole_and_as_written_in_status_and_at_the_start_of_outbox_work(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    """A folder name with brackets is text, not markup; a long path is one value an operator copies."""
    spool = home / "[/]state [prod]" / ("a-rather-long-folder-name-for-the-audit-spool-" * 2) / "audit-spool.db"
    write_config(home, f"email_vendor: file\naudit_spool: '{spool}'\n")
    with Connector() as connector:
        connector.audit_spool.append(connector.db.label, [_row("01BRACKETS000000000000001")])
    status = cli("status")
    assert status.exit_code == 0 and "Traceback" not in status.output, status.output
    assert f"1 log row waits in {spool}" in status.stdout, status.stdout
    spool.write_bytes(b"not an sqlite file" * 100)  # a spool that cannot be drained does not stop the worker
    worker = cli("outbox", "work", "--once")
    assert worker.exit_code == 0, worker.output
    assert f"audit spool not drained: audit spool {spool} cannot be drained" in worker.stderr


def test_a_secret_in_a_spooled_row_is_masked_in_the_spool_file_as_in_the_database(
    home: Path, quick: None, write_lock: Callable[[], None], vendor: Any
) -> None:
    from connectorctl.config import load_settings
    from connectorctl.credentials.static import StaticCredentialProvider
    from connectorctl.errors import AuthenticationError
    from tests.support import Reply

    key, password, card = "SG.sup3r-s3cret-api-key-f3a9", "hunter2-very-secret", "4242 4242 4242 4242"
    write_config(home, f'email_vendor: echo\nretry_policy: {{max_attempts: 1}}\nvendors:\n  echo: {{base_url: "{vendor.url}"}}\n')
    vendor.default = Reply(401, {"message": f"invalid key {key}", "password": password})  # the vendor echoes them
    message = EmailMessage(to=("a@example.com",), subject=f"card {card}", text="t", metadata={"password": password})
    with Connector(load_settings(), credentials=StaticCredentialProvider({"echo": {"api_key": key}})) as connector:
        with pytest.raises(AuthenticationError):
            connector.email().send(message)
        assert connector.audit_spool.count(connector.db.label) == 1
    blob = b"".join(p.read_bytes() for p in home.glob("connectorctl.db.audit-spool*"))
    assert b"send_email" in blob  # the row is there ...
    for secret in (key, password, card, card.replace(" ", "")):
        assert secret.encode() not in blob, secret  # ... masked


def test_a_postgresql_password_reaches_neither_the_spool_file_nor_what_the_operator_sees(
    home: Path, quick: None, postgres_url: str, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult],
    capsys: pytest.CaptureFixture[str]
) -> None:
    """The spool names each row's database; for a URL that carries a password, without it."""
    password = "Pa55-w0rd-in-the-url"
    url = postgres_url.replace("connectorctl@", f"connectorctl:{password}@")  # the test server trusts any password
    monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", url)
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as admin:  # new connections may read but not write
        admin.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET default_transaction_read_only = on")
    write_config(home, "email_vendor: file\n")
    with Connector() as connector:
        assert connector.email().send(MESSAGE).ok  # the vendor acted; the database refused the row
        assert connector.audit_spool.count(connector.db.label) == 1
    shown = [capsys.readouterr().err]
    shown += [cli("status", "-o", "json").output, cli("db", "drain-spool").output, cli("db", "check").output]
    assert "audit rows are kept in" in shown[0] and "1 integration-log row waits" in shown[2], shown
    blob = b"".join(p.read_bytes() for p in home.glob("audit-spool.db*"))
    assert b"send_email" in blob and password.encode() not in blob
    assert not [text for text in shown if password in text], shown


def test_a_spool_file_that_cannot_be_read_costs_monitoring_only_its_own_line(
    home: Path, cli: Callable[..., CliResult]
) -> None:
    """Status and /metrics keep every other figure; the spool's own commands, whose job it is, exit 6."""
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    write_config(home, "email_vendor: file\n")
    spool = home / "connectorctl.db.audit-spool"
    home.mkdir(parents=True, exist_ok=True)
    spool.write_bytes(os.urandom(4096))
    shown = cli("status")
    assert shown.exit_code == 0 and "ok %" in shown.stdout, shown.output
    assert f"\naudit spool {spool} cannot be read (file is not a database)\n" in shown.stdout
    body = json.loads(cli("status", "-o", "json").stdout)
    assert body["audit_spool"] == {"path": str(spool), "rows": None,
                                   "error": f"audit spool {spool} cannot be read (file is not a database)"}
    for command in ("check", "drain-spool"):
        failed = cli("db", command)
        assert failed.exit_code == 6 and str(spool) in failed.stderr and "spool file itself failed" in failed.stderr
        assert "once the database answers" not in failed.stderr and "Traceback" not in failed.output
    with Connector() as connector, TestClient(create_app(connector)) as client:
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "connectorctl_audit_spool_readable 0.0" in metrics.text.splitlines()
        assert "connectorctl_outbox_depth 0.0" in metrics.text and "connectorctl_audit_spool_rows" not in metrics.text
        assert client.get("/api/connector/status").status_code == 200
        spool.unlink()
        assert "connectorctl_audit_spool_readable 1.0" in client.get("/metrics").text.splitlines()


def test_a_drain_the_spool_itself_refuses_says_so_not_that_the_database_is_down(
    home: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(home, "email_vendor: file\n")
    with closing(StateDB(home / "connectorctl.db")) as db:
        label = db.label
    spool = AuditSpool(home / "connectorctl.db.audit-spool")
    spool.append(label, [_row("01SPOOLLOCKED000000000001")])
    monkeypatch.setattr("connectorctl.store.spool.LOCK_TIMEOUT_SECONDS", 0.1)
    holder = sqlite3.connect(str(spool.path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the spool: the database took the rows, the spool
    try:  # cannot forget them
        failed = cli("db", "drain-spool")
    finally:
        holder.close()
    assert failed.exit_code == 6 and "cannot be drained (database is locked)" in failed.stderr, failed.output
    assert "the spool file itself failed, not the database" in failed.stderr
    assert "once the database answers" not in failed.stderr
    assert json.loads(cli("db", "drain-spool", "-o", "json").stdout)["audit_spool"]["rows"] == 0
    with closing(StateDB(home / "connectorctl.db")) as db:
        assert log_rows(db) == (1, 1)


def test_one_postgresql_database_is_one_name_in_the_spool_however_its_url_spells_it(
    postgres_url: str, home: Path
) -> None:
    from connectorctl.store.postgres import describe

    assert describe("postgresql://me:pw@DB.Example/app") == describe("postgresql://db.example:5432/app")
    assert describe("postgresql://db.example/app") == "postgresql://db.example:5432/app"
    assert describe("postgresql:///app?host=/Run/PG") == "postgresql://%2FRun%2FPG:5432/app"  # a path keeps its case
    spelled = postgres_url.replace("@127.0.0.1:", "@LocalHost:")
    spool = AuditSpool(home / "spool.db")
    spool.append("postgresql://LocalHost:" + postgres_url.rsplit(":", 1)[1], [_row("01OLDSPELLING000000000001")])
    spool.append("postgresql://localhost/" + postgres_url.rsplit("/", 1)[1], [_row("01OTHERPORT00000000000001")])
    with closing(StateDB(spelled)) as db:
        assert db.label == "postgresql://localhost:" + postgres_url.rsplit(":", 1)[1]
        assert spool.count(db.label) == 1  # written before names were normalised: the same database
        assert spool.drain(db) == 1 and log_rows(db) == (1, 1)
        assert spool.count(db.label) == 0 and spool.count(describe(postgres_url.replace("127.0.0.1:", "h:"))) == 0
    assert spool.count("postgresql://LOCALHOST:5432/" + postgres_url.rsplit("/", 1)[1]) == 1  # port 5432: another
