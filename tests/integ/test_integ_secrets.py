"""A SendGrid key through every surface: env references, the encrypted store, creds and send as real processes.

The secret must reach the (fake, local) vendor and nowhere else: not the database file or its WAL, not a
log row, not any process's stdout or stderr.  The fake is tests/fake_sendgrid.py, the same server the
SendGrid adapter contract runs against.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from fake_sendgrid import API_KEY, FakeSendGrid

from tests.conftest import run_cli_process, write_config

pytestmark = pytest.mark.slow
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
WRONG_KEY = "SG.revoked-key-9876543210"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


def config(fake: FakeSendGrid, credentials: str = "") -> str:
    return (f"email_vendor: [sendgrid]\nvendors:\n  sendgrid:\n    base_url: {fake.url}\n    from_email: shop@example.com\n"
            f"    timeout_seconds: 5\n{credentials}")


def stored_bytes(home: Path) -> bytes:
    """Everything SQLite keeps on disk: the main file plus the write-ahead log and its index."""
    return b"".join(p.read_bytes() for p in home.glob("connectorctl.db*"))


def log_rows(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    """Full rows (``-o jsonl``; ``--json`` is the API's summary shape), read in this process."""
    result = cli("logs", "list", "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def request_data(row: dict[str, Any]) -> Any:
    raw = row["request_data"]
    return json.loads(raw) if isinstance(raw, str) else raw


def send(*extra: str, env: dict[str, str]) -> Any:
    return run_cli_process("send", "email", "--vendor", "sendgrid", "--to", "ann@example.com", "--subject", "Invoice 7",
                           "--body", "Your invoice", *extra, env=env)


def test_env_reference_is_logged_as_its_source_never_its_value(home: Path, fake: FakeSendGrid, monkeypatch: pytest.MonkeyPatch,
                                                               cli: Callable[..., Any]) -> None:
    from connectorctl import EmailMessage
    from connectorctl.config import load_settings
    from connectorctl.gateway import Connector

    write_config(home, config(fake, '    credentials: {api_key: "env:SENDGRID_API_KEY"}\n'))
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    connector = Connector(load_settings())
    connector.adapter("sendgrid", "email").send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
    connector.adapter("sendgrid", "email").verify_credentials()
    connector.close()
    assert fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"  # the key did reach the vendor
    rows = log_rows(cli)
    assert {r["operation"] for r in rows} == {"send_email", "verify_credentials"}
    for row in rows:
        assert row["status"] == "success"
        assert request_data(row)["credential_source"] == "env:SENDGRID_API_KEY"
    assert API_KEY.encode() not in stored_bytes(home)


def test_stored_key_through_creds_and_send_processes_leaks_nowhere(home: Path, fake: FakeSendGrid, cli: Callable[..., Any]) -> None:
    write_config(home, config(fake))
    env = {"CONNECTORCTL_MASTER_KEY": MASTER_KEY}
    outputs = []

    def run(*args: str, input: str | None = None) -> Any:
        proc = run_cli_process(*args, env=env, input=input)
        outputs.append(proc.stdout + proc.stderr)
        return proc

    assert run("creds", "set", "sendgrid", "--stdin", input=API_KEY + "\n").returncode == 0
    listed = run("creds", "list", "--json")
    assert listed.returncode == 0 and [c["service"] for c in json.loads(listed.stdout)] == ["sendgrid"]
    assert run("creds", "show", "sendgrid").returncode == 0
    tested = run("creds", "test", "sendgrid", "--json")
    assert tested.returncode == 0, tested.stderr
    assert json.loads(tested.stdout)["result"] == "ok"
    sent = send("--json", env=env)
    outputs.append(sent.stdout + sent.stderr)
    assert sent.returncode == 0, sent.stderr

    sends = [r for r in fake.requests if r.path == "/v3/mail/send"]
    assert len(sends) == 1 and sends[0].headers["authorization"] == f"Bearer {API_KEY}"
    rows = log_rows(cli)
    assert sorted(r["operation"] for r in rows) == ["send_email", "verify_credentials"]
    assert {request_data(r)["credential_source"] for r in rows} == {"store"}
    assert_nowhere(API_KEY, home, outputs, rows)


def test_rejected_key_exits_5_with_one_line_and_leaks_nowhere(home: Path, fake: FakeSendGrid, cli: Callable[..., Any]) -> None:
    write_config(home, config(fake))
    env = {"CONNECTORCTL_MASTER_KEY": MASTER_KEY}
    stored = run_cli_process("creds", "set", "sendgrid", "--stdin", input=WRONG_KEY + "\n", env=env)
    assert stored.returncode == 0, stored.stderr

    tested = run_cli_process("creds", "test", "sendgrid", "--json", env=env)
    assert tested.returncode == 5
    assert json.loads(tested.stdout)["result"] == "rejected"
    sent = send(env=env)
    assert sent.returncode == 5 and sent.stdout == ""
    error, *hint = sent.stderr.strip().splitlines()  # one error line (plus the house-style hint line)
    assert error.startswith("error [auth_failed]: sendgrid: HTTP 401") and [h.split(":")[0].strip() for h in hint] in ([], ["hint"])

    assert [r.path for r in fake.requests] == ["/v3/scopes", "/v3/mail/send"]  # a 401 is never retried
    rows = log_rows(cli)
    assert {r["http_status_code"] for r in rows} == {401}
    outputs = [p.stdout + p.stderr for p in (stored, tested, sent)]
    assert_nowhere(WRONG_KEY, home, outputs, rows)


def assert_nowhere(secret: str, home: Path, outputs: list[str], rows: list[dict[str, Any]]) -> None:
    middle = secret[3:-4]  # what a masked hint never shows either
    assert secret.encode() not in stored_bytes(home) and middle.encode() not in stored_bytes(home)
    for text in outputs:
        assert secret not in text and middle not in text
    assert middle not in json.dumps(rows)
