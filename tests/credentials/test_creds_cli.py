"""``connectorctl creds``: the commands, bad input, ``creds test`` outcomes, and no secret anywhere."""

from __future__ import annotations

import io
import json
import os
import secrets
import socket
import sqlite3

import pytest

from tests.credentials.conftest import run_acme_cli
from tests.credentials.fakevendor import acme_config


def feed(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def stored_services(cli) -> list[tuple[str, str | None]]:
    return [(r["service"], r["tenant"]) for r in json.loads(cli("creds", "list", "--json").stdout)]


BAD_INPUT = [
    (["acme"], None, "no terminal to prompt for the secret on: pipe it in and pass --stdin"),
    (["acme", "--stdin", "--field", "password"], "x" * 20, "api_key has no field password (fields: api_key)"),
    (["acme", "--stdin", "--expires-at", "next tuesday"], "x" * 20, "--expires-at 'next tuesday': expected an ISO 8601 time"),
    (["Bad Slug", "--stdin"], "x" * 20, "'Bad Slug' is not a vendor slug"),
    (["acme", "--stdin", "-m", "basic_auth"], "username=AC1\n", "no value given for password"),
    (["acme", "--stdin", "-m", "basic_auth"], "AC1:SECRETPART-000000\n", "stdin line 1 is not NAME=VALUE with NAME one of username, password"),
    (["acme", "--stdin"], "", "no value given for api_key"),
    (["acme", "--stdin"], " padded-secret-0000000 ", "has leading/trailing whitespace"),
    (["acme", "--stdin", "-m", "hmac", "--field", "key_id"], "x" * 20, "hmac needs --field secret"),
    (["acme", "--stdin", "-m", "basic_auth", "--field", "username"], "x" * 20, "basic_auth needs both password and username"),
    (["acme", "--stdin", "-m", "oauth2", "--field", "client_id"], "x" * 20, "oauth2 needs --field access_token, or client_id and client_secret"),
    (["acme", "--stdin", "--tenant", " "], "x" * 20, "--tenant is empty"),
    (["acme", "--stdin", "-m", "kerberos"], "x" * 20, "auth method 'kerberos' is not one of api_key, bearer_token, basic_auth, oauth2, hmac"),
]


@pytest.mark.parametrize("args,stdin,message", BAD_INPUT, ids=[str(i) for i in range(len(BAD_INPUT))])
def test_bad_input_is_one_clear_line_and_stores_nothing(cli, monkeypatch, master_key, args, stdin, message):
    if stdin is not None:
        feed(monkeypatch, stdin)
    else:
        monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal
    result = cli("creds", "set", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output and "SECRETPART" not in result.output
    assert stored_services(cli) == []


def test_set_list_show_disable_enable_rm(cli, monkeypatch, master_key):
    feed(monkeypatch, "SG.abcdefghijklmnopqrstuvwxyz-f3a9")
    assert cli("creds", "set", "acme", "--stdin", "--expires-at", "2030-01-01T00:00:00").exit_code == 0
    feed(monkeypatch, "username=AC123\npassword=twilio-auth-token-000000\n")
    assert cli("creds", "set", "acme", "--tenant", "t1", "-m", "basic_auth", "--stdin").exit_code == 0
    rows = json.loads(cli("creds", "list", "--json").stdout)
    assert [(r["service"], r["tenant"], r["auth_method"], r["hint"], r["expires_at"], r["active"]) for r in rows] == [
        ("acme", None, "api_key", "SG.…f3a9", "2030-01-01T00:00:00Z", True),
        ("acme", "t1", "basic_auth", "twi…0000", None, True),
    ]
    assert [json.loads(line)["tenant"] for line in cli("creds", "list", "--tenant", "t1", "-o", "jsonl").stdout.splitlines()] == ["t1"]
    table = cli("creds", "list").stdout
    assert "SG.…f3a9" in table and "abcdefghijklmnop" not in table
    assert cli("creds", "disable", "acme", "--tenant", "t1", "--json").exit_code == 0
    assert json.loads(cli("creds", "show", "acme", "--tenant", "t1", "--json").stdout)["active"] is False
    assert cli("creds", "enable", "acme", "--tenant", "t1").exit_code == 0
    assert json.loads(cli("creds", "show", "acme", "-t", "t1", "--json").stdout)["active"] is True
    assert cli("creds", "rm", "acme", "--tenant", "t1", "--yes").exit_code == 0
    assert stored_services(cli) == [("acme", None)]
    assert cli("creds", "rm", "acme", "--tenant", "t1", "--yes").exit_code == 5


def test_every_creds_command_has_help_and_none_takes_a_secret_on_argv(cli):
    for command in ("set", "list", "show", "rm", "disable", "enable", "rotate-key", "test"):
        result = cli("creds", command, "--help")
        assert result.exit_code == 0
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert len(lines) > 3
        for flag in ("--secret", "--password", "--value", "--api-key", "--token"):
            assert flag not in result.stdout


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_creds_test_reports_ok_rejected_and_unreachable(acme, cli, monkeypatch, master_key, home):
    acme.valid_bearer.add("good-key-000000000000000")
    feed(monkeypatch, "good-key-000000000000000")
    assert cli("creds", "set", "acme", "--stdin").exit_code == 0
    feed(monkeypatch, "bad-key-0000000000000000")
    assert cli("creds", "set", "acme", "--tenant", "t1", "--stdin").exit_code == 0
    ok = cli("creds", "test", "acme", "--json")
    assert (ok.exit_code, json.loads(ok.stdout)["result"], json.loads(ok.stdout)["http_status"]) == (0, "ok", 200)
    rejected = cli("creds", "test", "acme", "--tenant", "t1", "--json")
    assert (rejected.exit_code, json.loads(rejected.stdout)["result"], json.loads(rejected.stdout)["http_status"]) == (5, "rejected", 401)
    config = home / "config.yaml"
    config.write_text(config.read_text().replace(f"base_url: {acme.url}", f"base_url: http://127.0.0.1:{_closed_port()}"))
    down = cli("creds", "test", "acme", "--json")
    assert (down.exit_code, json.loads(down.stdout)["result"]) == (7, "unreachable")
    assert cli("creds", "test", "file", "--json").exit_code == 1
    config.write_text(acme_config(acme.url))
    missing = cli("creds", "test", "acme", "--tenant", "t2")
    assert missing.exit_code == 0  # t2 falls back to the global credential
    assert cli("creds", "rm", "acme", "--yes").exit_code == 0
    missing = cli("creds", "test", "acme", "--tenant", "t2")
    assert missing.exit_code == 5 and "hint: connectorctl creds set acme --tenant t2" in missing.stderr
    unknown = cli("creds", "test", "nosuchvendor")
    assert unknown.exit_code == 2 and "unknown vendor 'nosuchvendor'" in unknown.stderr


def test_a_known_secret_appears_nowhere_after_set_list_show_test_and_send(vendor, secret_service, home, tmp_path):
    """Real processes, the real Secret Service; then grep every byte we can reach for the secret."""
    secret = "SG.canary-" + secrets.token_hex(24)
    wrong = "SG.rejected-" + secrets.token_hex(24)
    vendor.valid_bearer.add(secret)
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(acme_config(vendor.url))
    env = {**secret_service, "CONNECTORCTL_HOME": str(home)}
    runs = [
        (["creds", "set", "acme", "--stdin"], secret + "\n"),
        (["creds", "set", "acme", "--tenant", "t1", "--stdin"], wrong),
        (["creds", "list"], None), (["creds", "list", "--json"], None),
        (["creds", "show", "acme"], None), (["creds", "show", "acme", "--json"], None),
        (["creds", "test", "acme"], None), (["creds", "test", "acme", "--tenant", "t1", "--json"], None),
        (["send", "email", "--to", "a@example.com", "--subject", "hello", "--body", "hi", "--json"], None),
        (["send", "email", "--to", "a@example.com", "--subject", "hello", "--body", "hi", "--tenant", "t1"], None),
        (["--debug", "creds", "test", "acme", "--tenant", "t1"], None),
    ]
    keep_wal_open = None
    outputs, codes = [], []
    for args, stdin in runs:
        assert secret not in " ".join(args)
        done = run_acme_cli(*args, env=env, input=stdin)
        outputs.append(done.stdout + done.stderr)
        codes.append(done.returncode)
        if keep_wal_open is None:  # hold a reader so the -wal file survives each process's exit
            keep_wal_open = sqlite3.connect(home / "connectorctl.db")
            keep_wal_open.execute("SELECT count(*) FROM connector_credentials").fetchone()
    assert codes == [0, 0, 0, 0, 0, 0, 0, 5, 0, 5, 5], outputs
    assert '"result": "rejected"' in outputs[7] and '"ok": true' in outputs[8] and "[auth_failed]" in outputs[9]
    files = sorted(p for p in home.iterdir() if p.name.startswith("connectorctl.db"))
    assert any(p.name.endswith("-wal") and p.stat().st_size > 0 for p in files)
    log_text = "\n".join(repr(r) for r in keep_wal_open.execute("SELECT * FROM integration_logs"))
    assert "verify_credentials" in log_text and "send_email" in log_text
    for value in (secret, wrong):
        for candidate in (value, value[3:], value.encode().hex()):
            for path in files:
                assert candidate.encode() not in path.read_bytes(), path
            assert candidate not in log_text
            for text in outputs:
                assert candidate not in text
    keep_wal_open.close()


def test_the_hidden_prompt_never_echoes_the_secret(master_key, home):
    """A real terminal (pty): ``creds set`` without --stdin prompts with echo off."""
    import pty
    import select
    import sys
    import time
    from pathlib import Path

    secret = "prompted-" + secrets.token_hex(16)
    script = str(Path(__file__).with_name("run_acme_cli.py"))
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI with the pty as its controlling terminal
        os.execve(sys.executable, [sys.executable, script, "creds", "set", "acme", "--json"], dict(os.environ))
    seen = b""
    deadline = time.monotonic() + 30
    sent = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not sent and b"(hidden): " in seen:
            os.write(fd, secret.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert sent, seen
    assert os.waitstatus_to_exitcode(status) == 0, seen
    assert b"api_key for acme (hidden): " in seen and secret.encode() not in seen
    from connectorctl.gateway import Connector

    with Connector() as connector:
        assert connector.credentials.get("acme").data["api_key"] == secret
