"""The integration log: one row per attempt, stable codes, redaction, and a busy database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connectorctl.config import load_settings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import AuthenticationError, StateStoreError
from connectorctl.gateway import Connector
from connectorctl.redaction import Redactor
from connectorctl.resilience.clock import FakeClock
from tests.conftest import run_cli_process, write_config
from tests.support import Reply, ScriptedVendor

SECRET_KEY = "SG.sup3r-s3cret-api-key-f3a9"
PASSWORD = "hunter2-very-secret"
CARD = "4242 4242 4242 4242"


def test_redactor_masks_fields_literal_secrets_and_card_numbers() -> None:
    r = Redactor(["authorization", "password"], secrets=[SECRET_KEY])
    data = {"headers": {"Authorization": "Bearer x"}, "nested": [{"PassWord": "p"}], "note": f"key={SECRET_KEY} card {CARD}", "n": 5}
    masked = r.data(data)
    assert masked["headers"]["Authorization"] == "***" and masked["nested"][0]["PassWord"] == "***"
    assert SECRET_KEY not in masked["note"] and "4242 4242 4242 4242" not in masked["note"] and "***4242" in masked["note"]
    assert r.text("order 1234567890123") == "order 1234567890123"  # not a Luhn-valid card: untouched


def test_a_secret_in_a_request_never_reaches_the_database_file(home: Path, vendor: ScriptedVendor) -> None:
    write_config(home, f'email_vendor: echo\nretry_policy: {{max_attempts: 1}}\nvendors:\n  echo: {{base_url: "{vendor.url}"}}\n')
    connector = Connector(load_settings(), clock=FakeClock(), credentials=StaticCredentialProvider({"echo": {"api_key": SECRET_KEY}}))
    message = EmailMessage(to=("a@example.com",), subject=f"card {CARD}", text="t", metadata={"password": PASSWORD})
    assert connector.email().send(message).ok
    # the vendor echoes the key back in an error body, which becomes our exception text and response_data
    vendor.default = Reply(401, {"message": f"invalid key {SECRET_KEY}", "password": PASSWORD})
    with pytest.raises(AuthenticationError) as info:
        connector.email().send(message)
    assert SECRET_KEY not in str(info.value) and PASSWORD not in repr(info.value.response_data)
    connector.close()
    blob = b"".join(p.read_bytes() for p in home.glob("connectorctl.db*"))
    for secret in (SECRET_KEY, PASSWORD, CARD, CARD.replace(" ", "")):
        assert secret.encode() not in blob, secret
    rows = sqlite3.connect(home / "connectorctl.db").execute("SELECT status, error_code, request_data, response_data, error_message FROM integration_logs ORDER BY seq").fetchall()
    assert [r[:2] for r in rows] == [("success", None), ("failed", "auth_failed")]
    assert json.loads(rows[0][2])["headers"]["Authorization"] == "***"
    assert "***" in rows[1][4]


def test_each_attempt_is_a_row_with_status_and_stable_error_code(home: Path) -> None:
    write_config(home, "email_vendor: fake\nretry_policy: {max_attempts: 3}\nvendors:\n  fake: {fail_kind: timeout, fail_first: 2}\n")
    connector = Connector(load_settings(), clock=FakeClock())
    result = connector.email().send(EmailMessage(to=("a@example.com",), subject="s", text="t"))
    assert result.ok
    connector.flush()
    rows = connector.db.conn.execute("SELECT attempt_number, status, error_code, correlation_id, operation FROM integration_logs ORDER BY seq").fetchall()
    assert [r[:3] for r in rows] == [(1, "timeout", "timeout"), (2, "timeout", "timeout"), (3, "success", None)]
    assert {r[3] for r in rows} == {result.correlation_id}
    assert {r[4] for r in rows} == {"send_email"}


def test_log_write_failure_warns_but_does_not_fail_a_sent_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(home, "email_vendor: file\nlogging: {writer: sync}\n")
    connector = Connector(load_settings())

    def broken(record: object) -> None:
        raise StateStoreError("database is read-only")

    connector.pipeline.hooks[0] = broken
    assert connector.email().send(EmailMessage(to=("a@example.com",), subject="s", text="t")).ok
    assert "integration log not written" in capsys.readouterr().err


@pytest.mark.parametrize("quota", [False, True])
def test_a_database_locked_too_long_is_one_clear_line(home: Path, quota: bool) -> None:
    limits = "vendors:\n  file: {rate_limits: [{limit: 5, per_seconds: 1}]}\n" if quota else ""
    write_config(home, "email_vendor: file\nlogging: {writer: sync}\n" + limits)
    from connectorctl.store.db import StateDB
    from connectorctl.store.spool import AuditSpool

    StateDB(home / "connectorctl.db").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(20)", str(home / "connectorctl.db")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        proc = run_cli_process("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b", env={"CONNECTORCTL_BUSY_TIMEOUT_MS": "300"})
        assert "Traceback" not in proc.stderr and "locked for more than 0.3 s" in proc.stderr
        if quota:  # the quota cannot be taken: nothing is sent
            assert proc.returncode == 6 and "state_unavailable" in proc.stderr
            assert not (home / "outbox").exists()
        else:  # the message went out; its log row waits in the local audit spool, and the operator is told
            assert proc.returncode == 0 and "audit rows are kept in" in proc.stderr
            assert len(list((home / "outbox").glob("*.eml"))) == 1
            spool = AuditSpool(home / "connectorctl.db.audit-spool")
            assert spool.count(str(home / "connectorctl.db")) == 1
        assert time.monotonic() - started < 15
    finally:
        holder.kill()
        holder.wait()
