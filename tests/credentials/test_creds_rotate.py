"""rotate-key: re-encryption under a new key, and a real process killed at every step."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import keyring
import pytest

from connectorctl.credentials import masterkey
from connectorctl.errors import CredentialUnreadableError
from connectorctl.gateway import Connector
from tests.credentials.conftest import new_key_text

SECRETS = {("acme", None): "global-secret-0000000000001", ("acme", "t1"): "tenant-secret-0000000000002", ("other", None): "other-secret-00000000000003"}


def store_all(cli, monkeypatch) -> None:
    for (service, tenant), value in SECRETS.items():
        monkeypatch.setattr("sys.stdin", io.StringIO(value))
        result = cli("creds", "set", service, *(["--tenant", tenant] if tenant else []), "--stdin")
        assert result.exit_code == 0, result.stderr


def assert_all_readable() -> None:
    masterkey.clear_cache()
    with Connector() as connector:
        for (service, tenant), value in SECRETS.items():
            assert connector.credentials.get(service, tenant).data["api_key"] == value


def key_ids(home: Path) -> set[str]:
    with sqlite3.connect(home / "connectorctl.db") as db:
        return {r[0] for r in db.execute("SELECT key_id FROM connector_credentials")}


def test_rotate_key_in_the_secret_service(cli, monkeypatch, secret_service, home):
    store_all(cli, monkeypatch)
    before = key_ids(home)
    result = cli("creds", "rotate-key", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reencrypted"] == 3 and {data["old_key_id"]} == before and key_ids(home) == {data["new_key_id"]} != before
    assert_all_readable()
    with Connector() as connector:
        entry = f"master-key/{connector.credentials.installation_id()}"
    assert keyring.get_password("connectorctl", entry + "/previous") is None
    assert masterkey.MasterKey.from_text(keyring.get_password("connectorctl", entry)).key_id == data["new_key_id"]


@pytest.mark.parametrize("point", ["after_previous", "after_current", "mid_transaction", "after_commit"])
def test_a_rotation_killed_at_any_step_leaves_every_credential_readable(cli, monkeypatch, tmp_path, home, point):
    key_file = tmp_path / "master.key"
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY_FILE", str(key_file))
    store_all(cli, monkeypatch)
    old_id = masterkey.MasterKey.from_text(key_file.read_text()).key_id
    script = Path(__file__).with_name("crash_rotate.py")
    crashed = subprocess.run([sys.executable, str(script), point], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert crashed.returncode == -9, crashed.stderr
    assert_all_readable()
    expected_ids = {old_id} if point != "after_commit" else {masterkey.MasterKey.from_text(key_file.read_text()).key_id}
    assert key_ids(home) == expected_ids
    if point == "after_current":  # a write while the rotation is half done must still land readable
        monkeypatch.setattr("sys.stdin", io.StringIO(SECRETS[("other", None)]))
        assert cli("creds", "set", "other", "--stdin").exit_code == 0
        assert_all_readable()
    finished = cli("creds", "rotate-key", "--json")
    assert finished.exit_code == 0, finished.stderr
    current = masterkey.MasterKey.from_text(key_file.read_text())
    assert key_ids(home) == {current.key_id} and current.key_id != old_id
    assert not key_file.with_name("master.key.previous").exists()
    assert_all_readable()


def test_env_key_rotation_uses_the_previous_key_the_operator_exports(cli, monkeypatch, master_key, home):
    store_all(cli, monkeypatch)
    new = new_key_text()
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY_PREVIOUS", master_key)
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", new)
    result = cli("creds", "rotate-key", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["reencrypted"] == 3
    monkeypatch.delenv("CONNECTORCTL_MASTER_KEY_PREVIOUS")
    assert key_ids(home) == {masterkey.MasterKey.from_text(new).key_id}
    assert_all_readable()


def test_rotation_refuses_to_start_when_a_row_is_unreadable(cli, monkeypatch, tmp_path, home):
    key_file = tmp_path / "master.key"
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY_FILE", str(key_file))
    store_all(cli, monkeypatch)
    key_before = key_file.read_text()
    with sqlite3.connect(home / "connectorctl.db") as db:
        db.execute("UPDATE connector_credentials SET credential_data = credential_data || 'x' WHERE service_name = 'other'")
    result = cli("creds", "rotate-key")
    assert result.exit_code == 5
    assert "credential other cannot be decrypted" in result.stderr and "hint: connectorctl creds set other" in result.stderr
    assert key_file.read_text() == key_before and not key_file.with_name("master.key.previous").exists()
    masterkey.clear_cache()
    with Connector() as connector:
        assert connector.credentials.get("acme").data["api_key"] == SECRETS[("acme", None)]
        with pytest.raises(CredentialUnreadableError):
            connector.credentials.get("other")
