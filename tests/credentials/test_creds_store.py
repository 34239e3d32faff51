"""Round trips of every auth method, tenant fallback, env: references and per-row failures."""

from __future__ import annotations

import io
import sqlite3

import pytest

from connectorctl.domain.values import AuthMethod
from connectorctl.errors import (
    ConfigurationError,
    CredentialNotFoundError,
    CredentialRefreshError,
    CredentialUnreadableError,
    ExitCode,
)
from connectorctl.gateway import Connector
from tests.credentials.conftest import new_key_text

METHODS = [
    ("api_key", [], "SG.round-trip-api-key-000000000001", {"api_key": "SG.round-trip-api-key-000000000001"}),
    ("bearer_token", [], "bearer-token-value-0000000002", {"token": "bearer-token-value-0000000002"}),
    ("basic_auth", [], "username=AC0000000000000000003\npassword=auth-token-000000000003\n",
     {"username": "AC0000000000000000003", "password": "auth-token-000000000003"}),
    ("oauth2", ["--field", "access_token"], "ya29.access-token-0000000004", {"access_token": "ya29.access-token-0000000004"}),
    ("hmac", [], "key_id=kid-5\nsecret=hmac-secret-000000000005\n", {"key_id": "kid-5", "secret": "hmac-secret-000000000005"}),
]


def set_via_cli(cli, monkeypatch, *args: str, stdin: str):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli("creds", "set", *args, "--stdin")


@pytest.mark.parametrize("method,extra,stdin,expected", METHODS, ids=[m[0] for m in METHODS])
def test_each_auth_method_round_trips_through_the_encrypted_store(cli, monkeypatch, master_key, home, method, extra, stdin, expected):
    result = set_via_cli(cli, monkeypatch, "acme", "--auth-method", method, *extra, stdin=stdin)
    assert result.exit_code == 0, result.stderr
    with Connector() as connector:
        creds = connector.credentials.get("acme")
        assert creds.auth_method is AuthMethod(method)
        assert dict(creds.data) == expected
        assert creds.source == "store"
    raw = (home / "connectorctl.db").read_bytes()
    for value in expected.values():
        if len(value) > 8:
            assert value.encode() not in raw


def test_tenant_credentials_win_and_other_tenants_fall_back_to_global(cli, monkeypatch, master_key):
    assert set_via_cli(cli, monkeypatch, "acme", stdin="global-key-0000000000000").exit_code == 0
    assert set_via_cli(cli, monkeypatch, "acme", "--tenant", "t1", stdin="tenant-one-key-000000000").exit_code == 0
    with Connector() as connector:
        assert connector.credentials.get("acme", "t1").data["api_key"] == "tenant-one-key-000000000"
        assert connector.credentials.get("acme", "t1").source == "store:tenant"
        assert connector.credentials.get("acme", "t2").data["api_key"] == "global-key-0000000000000"
        assert connector.credentials.get("acme").data["api_key"] == "global-key-0000000000000"
        assert connector.credentials.has("acme", "t2")
    assert cli("creds", "disable", "acme", "--tenant", "t1").exit_code == 0
    with Connector() as connector:
        assert connector.credentials.get("acme", "t1").data["api_key"] == "global-key-0000000000000"
    assert cli("creds", "rm", "acme", "--yes").exit_code == 0
    with Connector() as connector:
        with pytest.raises(CredentialNotFoundError) as err:
            connector.credentials.get("acme", "t1")
        assert err.value.hint == "connectorctl creds enable acme --tenant t1"
        assert not connector.credentials.has("acme", "t2")


def test_missing_credential_names_the_fixing_command_and_exits_5(cli):
    result = cli("creds", "show", "acme", "--tenant", "t9")
    assert result.exit_code == ExitCode.CREDENTIALS == 5
    assert "[credential_not_found]: no credentials stored for acme for tenant t9" in result.stderr
    assert "hint: connectorctl creds set acme --tenant t9" in result.stderr
    with Connector() as connector:
        with pytest.raises(CredentialNotFoundError) as err:
            connector.credentials.get("acme")
        assert err.value.hint == "connectorctl creds set acme"


def test_env_reference_is_used_before_the_global_store_and_only_its_source_is_recorded(acme, cli, monkeypatch, master_key, home):
    (home / "config.yaml").write_text((home / "config.yaml").read_text() + "    credentials:\n      api_key: env:ACME_API_KEY\n")
    monkeypatch.setenv("ACME_API_KEY", "env-provided-key-000000000")
    assert set_via_cli(cli, monkeypatch, "acme", stdin="stored-global-key-0000000").exit_code == 0
    assert set_via_cli(cli, monkeypatch, "acme", "--tenant", "t1", stdin="stored-tenant-key-0000000").exit_code == 0
    acme.valid_bearer.add("env-provided-key-000000000")
    with Connector() as connector:
        creds = connector.credentials.get("acme")
        assert (creds.data["api_key"], creds.source) == ("env-provided-key-000000000", "env:ACME_API_KEY")
        assert connector.credentials.get("acme", "t1").data["api_key"] == "stored-tenant-key-0000000"
    with Connector() as connector:  # closing flushes the integration log
        assert connector.adapter("acme", "email").verify_credentials().http_status == 200
    rows = sqlite3.connect(home / "connectorctl.db").execute("SELECT request_data FROM integration_logs WHERE operation='verify_credentials'").fetchall()
    assert rows == [('{"credential_source":"env:ACME_API_KEY"}',)]
    monkeypatch.delenv("ACME_API_KEY")
    with Connector() as connector:
        with pytest.raises(CredentialNotFoundError, match=r"refers to \$ACME_API_KEY, which is not set"):
            connector.credentials.get("acme")


def test_a_literal_secret_in_the_config_file_is_refused(acme, home, master_key):
    (home / "config.yaml").write_text((home / "config.yaml").read_text() + "    credentials:\n      api_key: SG.literal\n")
    with Connector() as connector:
        with pytest.raises(ConfigurationError, match="must be an env:VAR reference"):
            connector.credentials.get("acme")


def test_a_corrupted_row_fails_alone_and_other_credentials_keep_working(cli, monkeypatch, master_key, home):
    assert set_via_cli(cli, monkeypatch, "acme", stdin="healthy-key-00000000000000").exit_code == 0
    assert set_via_cli(cli, monkeypatch, "other", stdin="doomed-key-000000000000000").exit_code == 0
    db = sqlite3.connect(home / "connectorctl.db")
    (sealed,) = db.execute("SELECT credential_data FROM connector_credentials WHERE service_name='other'").fetchone()
    flipped = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]
    db.execute("UPDATE connector_credentials SET credential_data=? WHERE service_name='other'", (flipped,))
    db.commit()
    db.close()
    with Connector() as connector:
        with pytest.raises(CredentialUnreadableError, match="credential other cannot be decrypted: .*integrity check"):
            connector.credentials.get("other")
        assert connector.credentials.get("acme").data["api_key"] == "healthy-key-00000000000000"
    shown = cli("creds", "show", "other")
    assert shown.exit_code == 5 and "integrity check" in shown.stderr and "Traceback" not in shown.output
    assert cli("creds", "list").exit_code == 0


def test_a_ciphertext_moved_to_another_row_is_detected(cli, monkeypatch, master_key, home):
    assert set_via_cli(cli, monkeypatch, "acme", "--tenant", "a", stdin="tenant-a-key-0000000000000").exit_code == 0
    assert set_via_cli(cli, monkeypatch, "acme", "--tenant", "b", stdin="tenant-b-key-0000000000000").exit_code == 0
    db = sqlite3.connect(home / "connectorctl.db")
    (sealed_a,) = db.execute("SELECT credential_data FROM connector_credentials WHERE tenant_id='a'").fetchone()
    db.execute("UPDATE connector_credentials SET credential_data=? WHERE tenant_id='b'", (sealed_a,))
    db.commit()
    db.close()
    with Connector() as connector:
        with pytest.raises(CredentialUnreadableError, match="moved from another row"):
            connector.credentials.get("acme", "b")
        assert connector.credentials.get("acme", "a").data["api_key"] == "tenant-a-key-0000000000000"


def test_wrong_master_key_is_reported_and_never_mixed_in(cli, monkeypatch, master_key):
    assert set_via_cli(cli, monkeypatch, "acme", stdin="written-under-key-one-0000").exit_code == 0
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", new_key_text())
    with Connector() as connector:
        with pytest.raises(CredentialUnreadableError, match="wrong master key"):
            connector.credentials.get("acme")
    result = set_via_cli(cli, monkeypatch, "other", stdin="must-not-be-written-00000")
    assert result.exit_code == 5 and "wrong master key" in result.stderr
    assert [r["service"] for r in __import__("json").loads(cli("creds", "list", "--json").stdout)] == ["acme"]


def test_an_invalid_master_key_value_is_a_one_line_configuration_error(cli, monkeypatch):
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", "too-short")
    monkeypatch.setattr("sys.stdin", io.StringIO("value-000000000000"))
    result = cli("creds", "set", "acme", "--stdin")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].endswith("$CONNECTORCTL_MASTER_KEY is not a valid master key (not valid base64); it must be base64 of 32 random bytes")


def test_expired_credential_without_refresh_path(cli, monkeypatch, master_key):
    assert set_via_cli(cli, monkeypatch, "acme", "--expires-at", "2001-01-01T00:00:00Z", stdin="expired-key-0000000000000").exit_code == 0
    with Connector() as connector:
        with pytest.raises(CredentialRefreshError, match="expired at 2001-01-01T00:00:00Z and has no refresh path") as err:
            connector.credentials.get("acme")
        assert err.value.hint == "connectorctl creds set acme"


def test_read_only_database_fails_writes_cleanly_but_reads_keep_working(cli, monkeypatch, master_key):
    from connectorctl.cli.output import CliState
    from connectorctl.errors import StateStoreError

    assert set_via_cli(cli, monkeypatch, "acme", stdin="readable-key-000000000000").exit_code == 0
    connector = Connector()
    connector.db.conn.execute("PRAGMA query_only=ON")  # what SQLite reports for a read-only file, even as root
    assert connector.credentials.get("acme").data["api_key"] == "readable-key-000000000000"
    with pytest.raises(StateStoreError, match="is read-only"):
        connector.credentials.store.put("other", None, "api_key", {"api_key": "x" * 20}, None, 0.0)
    monkeypatch.setattr(CliState, "connector", lambda self: connector)
    monkeypatch.setattr("sys.stdin", io.StringIO("another-key-000000000000"))
    result = cli("creds", "set", "other", "--stdin")
    assert result.exit_code == ExitCode.STATE_UNAVAILABLE
    assert "[state_unavailable]" in result.stderr and "read-only" in result.stderr
    connector.close()


def test_nonce_is_fresh_per_write(cli, monkeypatch, master_key, home):
    for _ in range(2):
        assert set_via_cli(cli, monkeypatch, "acme", stdin="same-secret-every-time-00").exit_code == 0
    db = sqlite3.connect(home / "connectorctl.db")
    first = db.execute("SELECT credential_data FROM connector_credentials").fetchone()[0]
    assert set_via_cli(cli, monkeypatch, "acme", stdin="same-secret-every-time-00").exit_code == 0
    assert db.execute("SELECT credential_data FROM connector_credentials").fetchone()[0] != first
