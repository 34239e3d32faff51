"""OAuth2 against a local token server: expiry, 401-then-refresh, refresh failures."""

from __future__ import annotations

import io
import sqlite3

import pytest

from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import CredentialRefreshError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

CLIENT_ID, CLIENT_SECRET = "client-id-acme", "client-secret-0000000000000001"
REFRESH = "rt-initial-0000000000000000001"


def store_oauth2(cli, monkeypatch, lines: dict[str, str], *args: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{k}={v}\n" for k, v in lines.items())))
    fields = [a for name in lines for a in ("--field", name)]
    result = cli("creds", "set", "acme", "--auth-method", "oauth2", *fields, *args, "--stdin")
    assert result.exit_code == 0, result.stderr


def log_rows(home) -> list[tuple]:
    with sqlite3.connect(home / "connectorctl.db") as db:
        return db.execute("SELECT operation, status, http_status_code, error_code FROM integration_logs ORDER BY seq").fetchall()


def all_log_text(home) -> str:
    with sqlite3.connect(home / "connectorctl.db") as db:
        return "\n".join(repr(r) for r in db.execute("SELECT * FROM integration_logs"))


def test_client_credentials_token_is_fetched_cached_and_renewed_before_expiry(acme, cli, monkeypatch, master_key, home):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    clock = FakeClock()
    with Connector(clock=clock) as connector:
        first = connector.credentials.get("acme")
        assert first.data["access_token"] == acme.issued[0]
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[0]
        clock.advance(3600 - 61)
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[0]
        clock.advance(2)  # now inside the 60 s refresh window
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[1]
    assert acme.grants == ["client_credentials", "client_credentials"]
    with Connector(clock=clock) as connector:  # the renewed token was stored (sealed), not just cached
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[1]
    assert len(acme.grants) == 2
    assert [r[0] for r in log_rows(home)] == ["oauth2_token", "oauth2_token"]
    text = all_log_text(home) + repr((home / "connectorctl.db").read_bytes())
    for secret in (CLIENT_SECRET, *acme.issued):
        assert secret not in text


def test_refresh_token_grant_stores_the_rotated_refresh_token(acme, cli, monkeypatch, master_key):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.refresh_tokens.add(REFRESH)
    acme.rotate_refresh = True
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH, "access_token": "expired-token"},
                 "--expires-at", "2020-01-01T00:00:00Z")
    clock = FakeClock()
    with Connector(clock=clock) as connector:
        creds = connector.credentials.get("acme")
        assert creds.data["access_token"] == acme.issued[0] and creds.data["refresh_token"] != REFRESH
        assert REFRESH not in acme.refresh_tokens
        clock.advance(3600)
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[1]  # used the rotated token
    assert acme.grants == ["refresh_token", "refresh_token"]


def test_a_401_renews_the_token_once_and_the_send_succeeds(acme, cli, monkeypatch, master_key, home):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.refresh_tokens.add(REFRESH)
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH, "access_token": "revoked-token"},
                 "--expires-at", "2099-01-01T00:00:00Z")
    with Connector(clock=FakeClock()) as connector:
        result = connector.email().send(EmailMessage(to=("a@example.com",), subject="hi", text="body"))
    assert result.ok
    assert acme.grants == ["refresh_token"]
    assert log_rows(home) == [("send_email", "failed", 401, "auth_failed"), ("oauth2_token", "success", 200, None), ("send_email", "success", 202, None)]
    assert "revoked-token" not in all_log_text(home)


def test_a_second_401_after_the_refresh_is_a_credential_refresh_error(acme, cli, monkeypatch, master_key):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.reject_all = True
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    with Connector(clock=FakeClock()) as connector:
        with pytest.raises(CredentialRefreshError, match="still refuses the renewed access token"):
            connector.email().send(EmailMessage(to=("a@example.com",), subject="hi", text="body"))
    assert acme.grants == ["client_credentials", "client_credentials"]
    result = cli("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b")
    assert result.exit_code == 5 and "[credential_refresh_failed]" in result.stderr


def test_token_endpoint_refusal_is_final_and_the_cli_reports_rejected(acme, cli, monkeypatch, master_key, home):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.token_mode = "invalid_grant"
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH})
    with Connector(clock=FakeClock()) as connector:
        with pytest.raises(CredentialRefreshError, match=r"refused the refresh_token grant \(HTTP 400, invalid_grant\)") as err:
            connector.credentials.get("acme")
        assert err.value.hint == "store fresh credentials: connectorctl creds set acme --auth-method oauth2"
    assert acme.grants == ["refresh_token"]  # not retried
    result = cli("creds", "test", "acme", "--json")
    assert result.exit_code == 5
    assert '"result": "rejected"' in result.stdout and REFRESH not in result.output


def test_token_endpoint_down_is_retried_then_a_credential_refresh_error(acme, cli, monkeypatch, master_key):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.token_mode = "down"
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    with Connector(clock=FakeClock()) as connector:
        with pytest.raises(CredentialRefreshError, match="could not renew the access token: acme: token endpoint answered HTTP 503"):
            connector.credentials.get("acme")
    assert acme.grants == ["client_credentials", "client_credentials"]  # max_attempts: 2 in the test config


def test_wrong_client_secret_and_missing_token_url(acme, cli, monkeypatch, master_key, home):
    acme.clients[CLIENT_ID] = "the-real-secret-000000000000"
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    with Connector(clock=FakeClock()) as connector:
        with pytest.raises(CredentialRefreshError, match=r"HTTP 401, invalid_client"):
            connector.credentials.get("acme")
    (home / "config.yaml").write_text((home / "config.yaml").read_text().replace("    token_url:", "    # token_url:"))
    with Connector(clock=FakeClock()) as connector:
        with pytest.raises(CredentialRefreshError, match=r"vendors.acme.token_url is not configured") as err:
            connector.credentials.get("acme")
        assert err.value.hint == "add vendors.acme.token_url to the config file"


def test_env_configured_oauth2_client_gets_its_token_in_memory(acme, monkeypatch, home):
    acme.clients[CLIENT_ID] = CLIENT_SECRET
    monkeypatch.setenv("ACME_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ACME_CLIENT_SECRET", CLIENT_SECRET)
    (home / "config.yaml").write_text((home / "config.yaml").read_text()
                                      + "    auth_method: oauth2\n    credentials:\n      client_id: env:ACME_CLIENT_ID\n      client_secret: env:ACME_CLIENT_SECRET\n")
    clock = FakeClock()
    with Connector(clock=clock) as connector:
        creds = connector.credentials.get("acme")
        assert creds.source == "env:ACME_CLIENT_ID,env:ACME_CLIENT_SECRET"
        assert creds.data["access_token"] == acme.issued[0]
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[0]
        clock.advance(3600)
        assert connector.credentials.get("acme").data["access_token"] == acme.issued[1]
        assert connector.credentials.refresh("acme").data["access_token"] == acme.issued[2]
    with sqlite3.connect(home / "connectorctl.db") as db:
        assert db.execute("SELECT count(*) FROM connector_credentials").fetchone()[0] == 0


def test_a_process_that_loses_the_refresh_race_uses_the_winners_token(acme, cli, monkeypatch, master_key):
    """Two installations' processes refresh at once; the server rotates refresh tokens, so the loser gets invalid_grant."""
    from connectorctl.credentials import oauth2

    acme.clients[CLIENT_ID] = CLIENT_SECRET
    acme.refresh_tokens.add(REFRESH)
    acme.rotate_refresh = True
    store_oauth2(cli, monkeypatch, {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "refresh_token": REFRESH})
    winner, loser = Connector(clock=FakeClock()), Connector(clock=FakeClock())
    real = oauth2.fetch_token
    raced = []

    def racing(endpoint, service, tenant_id, fields):
        if endpoint is loser.credentials.tokens and not raced:
            raced.append(winner.credentials.get("acme").data["access_token"])  # the winner renews first
        return real(endpoint, service, tenant_id, fields)

    monkeypatch.setattr(oauth2, "fetch_token", racing)
    got = loser.credentials.get("acme")
    assert acme.grants == ["refresh_token", "refresh_token"]  # the loser's stale refresh token was refused ...
    assert got.data["access_token"] == raced[0] == acme.issued[0]  # ... and it used the winner's stored token
    winner.close()
    loser.close()
