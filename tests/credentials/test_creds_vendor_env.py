"""The vendors' own environment variables (SENDGRID_API_KEY, TWILIO_*, MAIL_FROM_*) as the last credential source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from fake_sendgrid import API_KEY, FakeSendGrid
from tests.conftest import write_config

SEND = ("send", "email", "--to", "ann@example.com", "--subject", "Hi", "--body", "Hello", "-o", "json")


@pytest.fixture
def sendgrid(home: Path) -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as fake:
        write_config(home, f"email_vendor: sendgrid\nretry_policy: {{max_attempts: 1}}\nvendors:\n  sendgrid: {{base_url: '{fake.url}'}}\n")
        yield fake


def sent_from(fake: FakeSendGrid) -> dict[str, Any]:
    body = json.loads([r for r in fake.requests if r.path == "/v3/mail/send"][-1].body)
    return body["from"]


def test_a_fresh_install_sends_with_the_reference_env_vars(sendgrid: FakeSendGrid, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)
    monkeypatch.setenv("MAIL_FROM_ADDRESS", "noreply@shop.example")
    monkeypatch.setenv("MAIL_FROM_NAME", "The Shop")
    result = cli(*SEND)
    assert result.exit_code == 0, result.output
    assert sent_from(sendgrid) == {"email": "noreply@shop.example", "name": "The Shop"}
    assert sendgrid.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"

    listed = json.loads(cli("creds", "list", "-o", "json").stdout)
    assert [(r["service"], r["source"], r["fields"]) for r in listed] == [("sendgrid", "env:SENDGRID_API_KEY", ["api_key"])]
    table = cli("creds", "list")
    assert "env:SENDGRID_API_KEY" in table.stdout and API_KEY not in table.output
    values = json.loads(cli("config", "show", "-o", "json").stdout)["values"]
    assert values["credentials.sendgrid"] == {"value": ["api_key"], "source": "env:SENDGRID_API_KEY"}
    assert values["sender.email.from_email"] == {"value": "noreply@shop.example", "source": "env:MAIL_FROM_ADDRESS"}
    assert API_KEY not in cli("config", "show").output


def test_anything_configured_wins_over_the_environment(sendgrid: FakeSendGrid, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from connectorctl.gateway import Connector

    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", "a" * 43 + "=")
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.an-old-key-from-the-env-file")
    with Connector() as connector:
        connector.credentials.store.put("sendgrid", None, "api_key", {"api_key": API_KEY}, None, connector.clock.time())
    assert cli(*SEND).exit_code == 0
    assert sendgrid.requests[-1].headers["authorization"] == f"Bearer {API_KEY}"
    assert json.loads(cli("config", "show", "-o", "json").stdout)["values"]["credentials.sendgrid"]["source"] == "store"
    # an operator's "disable" is not undone by the environment
    assert cli("creds", "disable", "sendgrid").exit_code == 0
    refused = cli(*SEND)
    assert refused.exit_code == 5 and "disabled" in refused.stderr
    assert len([r for r in sendgrid.requests if r.path == "/v3/mail/send"]) == 1


def test_half_a_pair_is_a_clear_error(home: Path, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home, "sms_vendor: twilio\nvendors:\n  twilio: {base_url: 'http://127.0.0.1:9'}\n")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "0" * 32)
    monkeypatch.setenv("TWILIO_FROM_NUMBER", "+14155550100")  # the sender comes from the environment too
    result = cli("send", "sms", "--to", "+14155552671", "-m", "hi")
    assert result.exit_code == 5
    assert "$TWILIO_ACCOUNT_SID is set for twilio but $TWILIO_AUTH_TOKEN is not" in result.stderr
    assert "export TWILIO_AUTH_TOKEN=..." in result.stderr
