"""An open circuit explains itself: why it opened, when a probe may pass, how to close it; `creds test` never opens one."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import write_config


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def unreachable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.test-key")
    write_config(home, f"""email_vendor: sendgrid
retry_policy: {{max_attempts: 1}}
circuit_breaker: {{failure_threshold: 2, timeout_seconds: 30}}
vendors:
  sendgrid: {{base_url: "http://127.0.0.1:{closed_port()}", credentials: {{api_key: "env:SENDGRID_API_KEY"}}}}
""")


SEND = ("send", "email", "--to", "a@example.com", "--subject", "Hi", "--body", "x", "--from", "shop@example.com")


def circuit(cli: Callable[..., Any]) -> dict[str, Any]:
    return json.loads(cli("circuit", "show", "sendgrid", "-o", "json").stdout)


def test_creds_test_does_not_count_against_the_circuit(unreachable: None, cli: Callable[..., Any]) -> None:
    for _ in range(3):
        result = cli("creds", "test", "sendgrid", "-o", "json")
        assert result.exit_code == 7 and json.loads(result.stdout)["result"] == "unreachable"
    state = circuit(cli)
    assert (state["state"], state["consecutive_failures"]) == ("closed", 0)


def test_circuit_open_names_the_cause_the_probe_time_and_the_reset(unreachable: None, cli: Callable[..., Any]) -> None:
    for _ in range(2):
        assert cli(*SEND).exit_code == 1
    state = circuit(cli)
    assert state["state"] == "open" and "connection_failed" in state["reason"]
    result = cli(*SEND)
    assert result.exit_code == 3
    line, hint = result.stderr.splitlines()[:2]
    assert line.startswith("error [circuit_open]: circuit for sendgrid is open (2 consecutive failures; last: connection_failed:")
    assert "refused" in line.lower()
    assert f"a probe call is let through at {state['open_until'][:19].replace('T', ' ')} UTC (in " in line
    assert hint == "  hint: if sendgrid is back, close it now: connectorctl circuit reset sendgrid"
    opened = [e for e in circuit(cli)["events"] if e["action"] == "open"]
    assert opened and "connection_failed" in opened[0]["reason"]
    # creds test still gets through to say what is wrong, and the circuit stays as it was
    assert json.loads(cli("creds", "test", "sendgrid", "-o", "json").stdout)["result"] == "unreachable"
    assert circuit(cli)["state"] == "open"


def test_forced_open_shows_its_reason_and_expiry(unreachable: None, cli: Callable[..., Any]) -> None:
    tripped = json.loads(cli("circuit", "trip", "sendgrid", "--for", "1h", "--reason", "planned maintenance", "-o", "json").stdout)
    result = cli(*SEND)
    assert result.exit_code == 3
    assert f"is forced open (planned maintenance); it closes at {tripped['open_until'][:19].replace('T', ' ')} UTC" in result.stderr
    assert "connectorctl circuit reset sendgrid" in result.stderr
    listing = cli("circuit", "list").stdout
    assert tripped["open_until"][:19].replace("T", " ") in listing and "planned maintenance" in listing
    cli("circuit", "trip", "sendgrid", "--reason", "until further notice")
    assert "forced open (until further notice); until an operator resets it" in cli(*SEND).stderr
