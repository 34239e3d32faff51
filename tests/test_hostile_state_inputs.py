"""Hostile values for where the state lives: database URLs and paths, the audit spool, ``CONNECTORCTL_*`` variables.

A value that cannot work is one config error (exit 2) before anything is opened, not an
``internal_error``, not an "unreachable" database after the pool's timeout, and not a spool
that fails only when the database does.  A password in a ``database:`` URL shows up in no
output, error line, API answer, or argv or environment of a process we start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from connectorctl.config import load_settings
from connectorctl.gateway import Connector
from tests.conftest import ROOT, run_cli_process, write_config
from tests.test_hostile_inputs import assert_input_error

# Each has a password (or what libpq would take for one) with SECRET in it, which must never be echoed.
BAD_URLS = [
    ("postgresql://u:pa%SECRET@127.0.0.1:5432/db", "not a valid PostgreSQL URL"),  # a bare % in the password
    ("postgresql://u:pa@SECRET@127.0.0.1:5432/db", "not a valid PostgreSQL URL"),  # a bare @: libpq takes 'pa'
    ("postgresql://u:pa/SECRET@127.0.0.1:5432/db", "not a valid PostgreSQL URL"),  # a bare /: host u, port pa
    ("postgresql://u:pa SECRET@127.0.0.1:5432/db", "not a valid PostgreSQL URL"),
    ("postgresql://u:SECRET@127.0.0.1:99999/db", "port must be a number"),
    ("postgresql://u:SECRET@127.0.0.1:five/db", "port must be a number"),
    ("postgresql://u:SECRET@127.0.0.1/db?sslmode=sometimes", "sslmode must be one of"),
    ("postgresql://u:SECRET@127.0.0.1/db?bogus=1", "invalid URI query parameter"),
    ("postgresql://u:SECRET@[::1/db", "not a valid PostgreSQL URL"),
    ("postgresql://u:SECRET@127.0.0.1/" + "d" * 100_000, "longer than 8192"),
]
COMMANDS = (("config", "show"), ("db", "check"), ("db", "drain-spool"), ("status", "-o", "json"))


@pytest.fixture(autouse=True)
def _short_pool_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTORCTL_BUSY_TIMEOUT_MS", "300")  # a regression waits 1 s per command, not 10


@pytest.mark.parametrize(("url", "reason"), BAD_URLS, ids=lambda v: v[:40])
def test_a_database_url_that_cannot_work_is_one_config_error_that_never_quotes_it(  # type: ignore[no-untyped-def]
    cli, home: Path, monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    write_config(home, f"database: '{url}'\n")
    for args in COMMANDS:
        result = cli(*args)
        assert_input_error(result, contains=reason)
        assert "SECRET" not in result.output and len(result.output) < 600
    write_config(home, "")
    monkeypatch.setenv("CONNECTORCTL_DATABASE_URL", url)
    result = cli("status")
    assert_input_error(result, contains=reason)
    assert "env:CONNECTORCTL_DATABASE_URL: database: " in result.stderr and "SECRET" not in result.output


def test_odd_but_valid_database_urls_and_empty_variables_are_accepted(  # type: ignore[no-untyped-def]
    cli, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No host means libpq's default socket; a socket folder, several hosts and an encoded password are URLs too."""
    for url in ("postgresql://", "postgresql:///db", "postgresql://%2Fvar%2Frun%2Fpostgresql/db",
                "postgresql:///db?host=/tmp&port=5433", "postgresql://u:p%40%3A%2F%25w@h1:5432,h2:5433/db"):
        write_config(home, f"database: '{url}'\n")
        shown = cli("config", "show", "-o", "json")
        assert shown.exit_code == 0 and "p%40" not in shown.stdout, (url, shown.stderr)
    write_config(home, "")
    for var in ("CONNECTORCTL_DATABASE_URL", "CONNECTORCTL_CONFIG", "CONNECTOR_EMAIL_VENDOR", "CONNECTOR_CIRCUIT_TIMEOUT"):
        monkeypatch.setenv(var, "")  # empty is unset
    assert cli("config", "show").exit_code == 0


@pytest.mark.parametrize("to", ["postgresql://127.0.0.1:five/db", "postgresql://127.0.0.1/db?sslmode=sometimes",
                                "postgresql://127.0.0.1/db?bogus=1", "postgresql://[::1/db"])
def test_db_copy_refuses_a_target_url_that_cannot_work(cli, home: Path, to: str) -> None:  # type: ignore[no-untyped-def]
    assert cli("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b").exit_code == 0
    assert_input_error(cli("db", "copy", "--to", to), contains="--to: ")


def _paths(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "a-file").write_text("x")
    return [
        (str(tmp_path), "is a folder, not a file"),
        (str(tmp_path / "a-file" / "state.db"), "a part of the path is a file"),
        (str(tmp_path / ("n" * 300)), "the path is too long"),
        ("~no-such-user-here/state.db", "cannot expand '~no-such-user-here': no such user"),
        ("/tmp/a\0b", "the path contains a NUL character"),
    ]


@pytest.mark.parametrize("key", ["database", "audit_spool", "master_key_file"])
def test_a_path_setting_where_no_file_can_be_is_one_config_error(  # type: ignore[no-untyped-def]
    cli, home: Path, tmp_path: Path, key: str
) -> None:
    for value, reason in _paths(tmp_path):
        write_config(home, f"{key}: {json.dumps(value)}\nemail_vendor: file\n")
        for args in (("config", "show"), ("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b")):
            assert_input_error(cli(*args), contains=f"{key}: {reason}")
    assert not (home / "outbox").exists()  # nothing was sent


def test_odd_state_locations_in_the_environment_are_one_config_error(  # type: ignore[no-untyped-def]
    cli, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [("CONNECTORCTL_HOME", value, reason) for value, reason in _paths(tmp_path)[1:4]]
    cases += [("CONNECTORCTL_HOME", str(tmp_path / "a-file"), "is a file, not a folder")]
    cases += [("CONNECTORCTL_CONFIG", value, reason) for value, reason in _paths(tmp_path)[2:4]]
    cases += [("CONNECTORCTL_DATABASE_URL", str(tmp_path), "is a folder, not a file")]
    for var, value, reason in cases:
        with monkeypatch.context() as env:
            env.setenv(var, value)
            assert_input_error(cli("status"), contains=f"env:{var}: ")
            assert reason in cli("config", "show").stderr, (var, value)


def test_huge_or_multi_line_environment_values_are_one_short_line(  # type: ignore[no-untyped-def]
    cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var, value, reason in [
        ("CONNECTOR_EMAIL_VENDOR", "x" * 100_000, "unknown email vendor"),
        ("CONNECTOR_LOG_RETENTION_DAYS", "9" * 100_000, "CONNECTOR_LOG_RETENTION_DAYS"),
        ("CONNECTORCTL_CONFIG", "/nowhere/config.yaml\nerror: a second line", "config file not found"),
        ("CONNECTOR_CIRCUIT_TIMEOUT", "\udcff\udcfe", "expected a number"),  # bytes that are not UTF-8
    ]:
        with monkeypatch.context() as env:
            env.setenv(var, value)
            result = cli("config", "show")
            assert_input_error(result, contains=reason)
            assert len(result.stderr) < 1200 and result.stderr.count("\n") <= 2  # the error and its hint


def test_a_home_whose_name_is_not_utf8_still_works(tmp_path: Path) -> None:
    """Its path comes back in log rows and in ``config show``; a UTF-8 terminal still gets every answer."""
    env = {"CONNECTORCTL_HOME": str(tmp_path / "h\udcff\udcfe"), "PYTHONIOENCODING": "utf-8:strict"}
    sent = run_cli_process("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b", env=env)
    assert sent.returncode == 0, sent.stderr
    listed = run_cli_process("logs", "list", "-o", "json", env=env)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["data"]) == 1, listed.stderr
    shown = run_cli_process("config", "show", env=env)
    assert shown.returncode == 0 and "h\\udcff\\udcfe" in shown.stdout, shown.stderr


# -- a password in a database: URL ------------------------------------------------------------
PASSWORD = "p@ss:w/rd%?#Secret-7"  # every character that needs percent-encoding in a URL


def _with_password(url: str) -> str:
    return url.replace("://connectorctl@", f"://connectorctl:{quote(PASSWORD, safe='')}@", 1)


def _leaks(text: str) -> list[str]:
    forms = {PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), "Secret-7"}
    return [form for form in forms if form in text]


def test_a_database_password_appears_in_no_output_answer_or_error(  # type: ignore[no-untyped-def]
    cli, home: Path, postgres_url: str, postgres_server
) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    url = _with_password(postgres_url)
    socket_url = _with_password(postgres_url).replace(
        "@127.0.0.1:", f"@{quote(str(postgres_server.root), safe='')}:"
    )  # the server's unix socket
    for database in (url, socket_url, url + "?sslmode=disable"):
        write_config(home, f"database: '{database}'\nemail_vendor: file\n")
        assert cli("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b").exit_code == 0
        for args in (("config", "show"), ("config", "show", "-o", "json"), ("status",), ("status", "-o", "json"),
                     ("db", "check", "-o", "json"), ("db", "drain-spool"), ("logs", "list", "-o", "json")):
            result = cli(*args)
            assert result.exit_code == 0, (args, result.stderr)
            assert not _leaks(result.output), (args, result.output)
    connector = Connector(load_settings())
    with TestClient(create_app(connector)) as client:
        for path in ("/api/connector/status", "/api/connector/logs", "/api/connector/health"):
            answer = client.get(path)
            assert answer.status_code < 500 and not _leaks(answer.text), path
    connector.close()
    write_config(home, f"database: '{url.rsplit('/', 1)[0]}/no_such_database'\n")
    failed = cli("db", "check")
    assert failed.exit_code == 6 and "no_such_database" in failed.stderr and not _leaks(failed.output)


@pytest.mark.slow
def test_no_process_we_start_carries_the_database_password(home: Path, postgres_url: str) -> None:
    """``serve --workers 2``: the supervisor and its workers get the settings by pickle, not by argv or env."""
    from tests.api.test_api_process import spawned_children, wait_for

    write_config(home, f"database: '{_with_password(postgres_url)}'\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=str(home))
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "serve", "--port", "0", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        workers = wait_for(lambda: kids if len(kids := spawned_children(proc.pid)) == 2 else None)
        for pid in (proc.pid, *workers):
            for part in ("cmdline", "environ"):
                assert not _leaks(Path(f"/proc/{pid}/{part}").read_bytes().decode(errors="replace")), (pid, part)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
