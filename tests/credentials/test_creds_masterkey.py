"""Master key sources: the real Secret Service, key files, env, and every way a keyring can fail."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import keyring
import keyring.core
import pytest

from connectorctl.credentials import masterkey
from connectorctl.errors import ExitCode
from connectorctl.gateway import Connector
from tests.credentials.keyring_backends import LockedKeyring, PlaintextKeyring


def set_secret(cli, monkeypatch, service: str, value: str, *args: str):
    monkeypatch.setattr("sys.stdin", io.StringIO(value))
    return cli("creds", "set", service, *args, "--stdin")


def test_master_key_lives_in_the_real_secret_service_and_another_process_reads_it(cli, monkeypatch, secret_service, cli_process, home):
    assert set_secret(cli, monkeypatch, "acme", "ss-backed-secret-0000000000").exit_code == 0
    with Connector() as connector:
        entry = f"master-key/{connector.credentials.installation_id()}"
        assert connector.credentials.store.keys.source.name == "keyring"
    stored = subprocess.run(["secret-tool", "lookup", "service", "connectorctl", "username", entry], capture_output=True, text=True,
                            env={**os.environ, **secret_service}, timeout=10)
    assert stored.returncode == 0 and len(stored.stdout.strip()) == 44  # base64 of 32 bytes
    assert stored.stdout.strip().encode() not in (home / "connectorctl.db").read_bytes()
    shown = cli_process("creds", "show", "acme", "--json", env=secret_service)
    assert shown.returncode == 0, shown.stderr
    assert '"readable": true' in shown.stdout and '"master_key_source": "keyring"' in shown.stdout


def test_the_master_key_is_cached_in_process(cli, monkeypatch, secret_service):
    assert set_secret(cli, monkeypatch, "acme", "cached-secret-00000000000000").exit_code == 0
    masterkey.clear_cache()
    calls = []
    real = keyring.get_keyring()
    original = type(real).get_password

    def counting(self, service, username):
        calls.append(username)
        return original(self, service, username)

    monkeypatch.setattr(type(real), "get_password", counting)
    with Connector() as connector:
        for _ in range(20):
            assert connector.credentials.get("acme").data["api_key"] == "cached-secret-00000000000000"
    assert len(calls) == 1


def test_no_keyring_backend_says_exactly_what_to_do(cli, monkeypatch):
    result = set_secret(cli, monkeypatch, "acme", "secret-000000000000")
    assert result.exit_code == ExitCode.USAGE
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert lines == ["error [config_error]: no OS keyring backend is available for the master key: set "
                     "CONNECTORCTL_MASTER_KEY_FILE=/path/to/keyfile (mode 0600) or CONNECTORCTL_MASTER_KEY; see docs/credentials.md"]


def test_a_locked_keyring_is_a_one_line_credential_error(cli, monkeypatch):
    keyring.core.set_keyring(LockedKeyring())
    result = set_secret(cli, monkeypatch, "acme", "secret-000000000000")
    assert result.exit_code == ExitCode.CREDENTIALS
    assert "[credential_unreadable]: the OS keyring is locked: unlock it" in result.stderr
    assert "Traceback" not in result.output


def test_a_plaintext_keyring_is_never_used_silently(cli, monkeypatch):
    keyring.core.set_keyring(PlaintextKeyring())
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    result = set_secret(cli, monkeypatch, "acme", "secret-000000000000")
    assert result.exit_code == ExitCode.USAGE
    assert "only a plaintext keyring (tests.credentials.keyring_backends.PlaintextKeyring) is available, refusing" in result.stderr
    assert PlaintextKeyring.entries == {}
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.credentials.keyring_backends.PlaintextKeyring")  # an explicit choice is allowed
    assert set_secret(cli, monkeypatch, "acme", "secret-000000000000").exit_code == 0
    PlaintextKeyring.entries.clear()


def test_key_file_is_created_0600_and_a_wider_mode_is_refused(cli, monkeypatch, tmp_path):
    path = tmp_path / "keys" / "master.key"
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY_FILE", str(path))
    assert set_secret(cli, monkeypatch, "acme", "file-backed-secret-00000000").exit_code == 0
    assert path.stat().st_mode & 0o777 == 0o600
    masterkey.clear_cache()
    os.chmod(path, 0o644)
    result = cli("creds", "show", "acme")
    assert result.exit_code == ExitCode.USAGE
    assert f"error [config_error]: master key file {path} has mode 0644, wider than 0600; run: chmod 600 {path}" in result.stderr
    os.chmod(path, 0o600)
    masterkey.clear_cache()
    with Connector() as connector:
        assert connector.credentials.get("acme").data["api_key"] == "file-backed-secret-00000000"


def test_key_file_from_the_config_setting_and_env_takes_precedence(cli, monkeypatch, tmp_path, home):
    path = tmp_path / "configured.key"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(f"master_key_file: {path}\n")
    assert set_secret(cli, monkeypatch, "acme", "configured-file-secret-0000").exit_code == 0
    assert path.exists()
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", masterkey.MasterKey.generate().to_text())
    with Connector() as connector:
        assert connector.credentials.store.keys.source.name == "env:CONNECTORCTL_MASTER_KEY"
        assert "wrong master key" in str(pytest.raises(Exception, connector.credentials.get, "acme").value)


def test_cli_start_up_does_not_import_keyring_or_cryptography():
    code = ("import sys; from connectorctl.cli.main import app; import typer; "
            "bad = [m for m in ('keyring', 'cryptography', 'httpx', 'sqlite_utils') if m in sys.modules]; print(bad)")
    out = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=30)
    assert out.stdout.strip() == "[]", out.stderr


def test_a_lost_keyring_entry_is_reported_and_no_replacement_key_is_created(cli, monkeypatch, secret_service):
    assert set_secret(cli, monkeypatch, "acme", "before-the-loss-000000000000").exit_code == 0
    with Connector() as connector:
        entry = f"master-key/{connector.credentials.installation_id()}"
    keyring.delete_password("connectorctl", entry)
    masterkey.clear_cache()
    shown = cli("creds", "show", "acme")
    assert shown.exit_code == 5 and "but keyring holds no master key" in shown.stderr
    result = set_secret(cli, monkeypatch, "other", "after-the-loss-0000000000000")
    assert result.exit_code == 5 and "no master key in keyring, but this database was written with key" in result.stderr
    assert keyring.get_password("connectorctl", entry) is None
