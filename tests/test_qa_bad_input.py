"""Release QA: hostile operator input ends in one clear error line, never a traceback or a stuck state."""

from __future__ import annotations

import json

from tests.conftest import write_config


def _one_error_line(result, code: str) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr and "internal_error" not in result.stderr, result.stderr
    assert f"[{code}]" in result.stderr.splitlines()[0], result.stderr


def test_absurd_durations_are_refused_and_nothing_unreadable_is_stored(cli, home):  # type: ignore[no-untyped-def]
    cli("init")
    result = cli("circuit", "trip", "file", "--for", "99999999999999d", "--reason", "x")
    assert result.exit_code == 2
    _one_error_line(result, "invalid_input")
    listed = cli("circuit", "list", "--json")  # a stored expiry past year 9999 used to break this for good
    assert listed.exit_code == 0 and json.loads(listed.stdout)
    for command in (("metrics", "--since", "99999999999d"), ("logs", "list", "--since", "99999999999d")):
        result = cli(*command)
        assert result.exit_code == 2
        _one_error_line(result, "invalid_input")


def test_non_finite_numbers_in_config_or_env_are_refused(cli, home, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONNECTOR_CIRCUIT_TIMEOUT", "nan")  # used to pass and print NaN, which is not JSON
    result = cli("config", "show", "-o", "json")
    assert result.exit_code == 2 and "CONNECTOR_CIRCUIT_TIMEOUT" in result.stderr
    _one_error_line(result, "config_error")
    monkeypatch.delenv("CONNECTOR_CIRCUIT_TIMEOUT")
    write_config(home, "retry_policy:\n  multiplier: .inf\n")
    result = cli("config", "show", "-o", "json")
    assert result.exit_code == 2 and "retry_policy.multiplier" in result.stderr
    _one_error_line(result, "config_error")


def test_line_breaks_in_email_headers_are_invalid_input_and_nothing_is_sent(cli, home):  # type: ignore[no-untyped-def]
    cli("init")
    for extra in (("-s", "hi\r\nBcc: evil@example.net"), ("-s", "hi", "--header", "X-Ref: 1\nBcc: evil@example.net"),
                  ("-s", "hi", "--header", "X Ref: 1")):
        result = cli("send", "email", "--to", "a@example.com", "--body", "x", *extra)
        assert result.exit_code == 2, result.output  # used to be internal_error from the MIME builder mid-send
        _one_error_line(result, "invalid_input")
    assert not list((home / "outbox").glob("*.eml")) if (home / "outbox").exists() else True
    assert json.loads(cli("logs", "list", "--json").stdout)["data"] == []


def test_a_malformed_header_option_never_prints_its_value(cli, home, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    cli("init")
    monkeypatch.setenv("HOOK_SECRET", "whsec-test")
    secret = "sk_live_7f3a9c2e1b"
    body = tmp_path / "body.json"
    body.write_text("{}")
    for args in (("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x", "--header", f"X-Api-Key {secret}"),
                 ("webhook", "verify", "--scheme", "github", "--secret-env", "HOOK_SECRET", "--body-file", str(body), "--header", f"Authorization Bearer {secret}")):
        result = cli(*args)
        assert result.exit_code == 2, result.output
        _one_error_line(result, "invalid_input")
        assert "--header must look like 'Name: value'" in result.stderr and secret not in result.output + result.stderr


def test_malformed_recipient_csv_is_refused_before_anything_is_sent(cli, home, tmp_path):  # type: ignore[no-untyped-def]
    cli("init")
    files = {
        "unterminated.csv": 'email,name\na@example.com,"Ann\nb@example.com,Bob\n',  # used to send one mail to Ann+Bob's line
        "stray_quote.csv": 'email,name\na@example.com,"Ann"x\n',
        "duplicate.csv": "email,name,email\na@example.com,Ann,b@example.com\n",  # used to keep only b@
        "shifted.csv": "email,name\na@example.com,Smith, Ann\n",  # used to greet "Smith"
        "semicolons.csv": "email;name\na@example.com;Ann\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = cli("send", "email", "--to-file", str(path), "-s", "Hi {{name}}", "--body", "x", "--json")
        assert result.exit_code == 2, (name, result.output)
        _one_error_line(result, "invalid_input")
        assert name in result.stderr
        if name == "semicolons.csv":
            assert "comma-separated" in result.stderr  # say why the email column was not found
    assert not (home / "outbox").exists() or not list((home / "outbox").iterdir())


def test_damaged_credential_metadata_stays_listable_and_fixable(cli, home, monkeypatch):  # type: ignore[no-untyped-def]
    import base64
    import os
    import sqlite3

    from connectorctl.credentials import masterkey

    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    masterkey.clear_cache()
    write_config(home, "email_vendor: sendgrid\nvendors:\n  sendgrid: {base_url: 'http://127.0.0.1:9', from_email: erp@example.com}\n")
    cli("init")
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("SG.qa-secret-value-123"))
    assert cli("creds", "set", "sendgrid", "--stdin").exit_code == 0
    with sqlite3.connect(home / "connectorctl.db") as db:
        db.execute("UPDATE connector_credentials SET field_names = '{bad', expires_at = 'not a time'")
    listed = cli("creds", "list", "--json")  # both used to be internal errors, for every credential at once
    assert listed.exit_code == 0, listed.output
    assert [row["service"] for row in json.loads(listed.stdout)] == ["sendgrid"]
    sent = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x")
    assert sent.exit_code == 5, sent.output  # treated as expired: no vendor call, a credential error with a hint
    _one_error_line(sent, "credential_refresh_failed")
    assert "creds set sendgrid" in sent.stderr and "qa-secret" not in sent.output
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("SG.qa-secret-value-456"))
    assert cli("creds", "set", "sendgrid", "--stdin").exit_code == 0
    assert json.loads(cli("creds", "show", "sendgrid", "--json").stdout)["fields"] == ["api_key"]
    masterkey.clear_cache()


def test_ctrl_c_while_a_vendor_hangs_still_leaves_an_audit_row(home):  # type: ignore[no-untyped-def]
    import signal
    import socket
    import sqlite3
    import subprocess
    import sys
    import threading

    from tests.conftest import ROOT

    server = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    held: list[socket.socket] = []

    def hang() -> None:  # a vendor that takes the request and never answers
        conn, _ = server.accept()
        held.append(conn)
        conn.recv(65536)
        accepted.set()

    threading.Thread(target=hang, daemon=True).start()
    port = server.getsockname()[1]
    write_config(home, (
        "sms_vendor: twilio\nlogging: {writer: sync}\nvendors:\n  twilio:\n"
        f"    base_url: http://127.0.0.1:{port}\n    from_number: '+14155550100'\n    timeout_seconds: 60\n"
        "    credentials: {username: 'env:QA_TW_SID', password: 'env:QA_TW_TOKEN'}\n"
    ))
    env = {**__import__("os").environ, "QA_TW_SID": "ACqa", "QA_TW_TOKEN": "qa-token-secret-0001", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "send", "sms", "--to", "+14155550123", "--message", "hi"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert accepted.wait(30), "the CLI never reached the vendor"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        server.close()
        for conn in held:
            conn.close()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == "interrupted"  # exited silently before
    rows = sqlite3.connect(home / "connectorctl.db").execute("SELECT service_name, error_code, error_message FROM integration_logs").fetchall()
    assert rows and rows[-1][:2] == ("twilio", "interrupted"), rows  # the SMS may have gone out: it used to leave no trace
    assert "qa-token-secret" not in str(rows)


def test_huge_numbers_are_usage_errors_or_mean_keep_everything(cli, home):  # type: ignore[no-untyped-def]
    cli("init")
    assert cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x").exit_code == 0
    for command in (("logs", "list", "--offset", "99999999999999999999"), ("logs", "tail", "-n", "99999999999999999999"),
                    ("logs", "tail", "-f", "-n", "0", "--interval", "1e308")):
        result = cli(*command)  # each used to end in an internal OverflowError
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output and "internal_error" not in result.output
    purged = cli("logs", "purge", "--yes", "--days", "99999999999", "--json")  # more days than the calendar: nothing is old enough
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["deleted"] == 0
    assert len(json.loads(cli("logs", "list", "--json").stdout)["data"]) == 1


def test_config_show_never_prints_a_literal_secret_from_the_config_file(cli, home):  # type: ignore[no-untyped-def]
    write_config(home, "email_vendor: sendgrid\nvendors:\n  sendgrid:\n    credentials: {api_key: SG.literal-secret-0001, token: 'env:QA_TOKEN'}\n")
    for args in (("config", "show", "--json"), ("config", "show")):
        result = cli(*args)
        assert result.exit_code == 0 and "literal-secret" not in result.output, result.output  # used to print it
    values = json.loads(cli("config", "show", "--json").stdout)["values"]
    assert values["vendors.sendgrid.credentials.api_key"]["value"] == "***"
    assert values["vendors.sendgrid.credentials.token"]["value"] == "env:QA_TOKEN"
    sent = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x")
    assert sent.exit_code == 2 and "env:VAR reference" in sent.stderr and "literal-secret" not in sent.output


def test_undecodable_stdin_is_invalid_input_not_a_crash_or_a_stored_secret(cli, home, monkeypatch):  # type: ignore[no-untyped-def]
    import base64
    import io
    import os

    from connectorctl.credentials import masterkey

    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    masterkey.clear_cache()
    cli("init")

    def stdin(data: bytes) -> None:  # what a C/POSIX-locale terminal hands Python: surrogates for bad bytes
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="surrogateescape"))

    stdin(b"\xff body")
    sent = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body-file", "-")
    assert sent.exit_code == 2, sent.output  # used to be an internal UnicodeEncodeError
    _one_error_line(sent, "invalid_input")
    stdin(b"SG.abc\xffdefghijklmnop")
    stored = cli("creds", "set", "sendgrid", "--stdin")
    assert stored.exit_code == 2, stored.output  # used to store a mangled secret
    _one_error_line(stored, "invalid_input")
    assert json.loads(cli("creds", "list", "--json").stdout) == []
    stdin("SG.gültig-0123456789".encode())
    assert cli("creds", "set", "sendgrid", "--stdin").exit_code == 0
    masterkey.clear_cache()


def test_webhook_tolerance_nan_or_negative_is_refused_not_freshness_off(cli, home, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QA_WH_SECRET", "whsec_qa")
    body = tmp_path / "body.json"
    body.write_bytes(b'{"id": "evt_1"}')
    signed = json.loads(cli("webhook", "sign", "--scheme", "stripe", "--secret-env", "QA_WH_SECRET", "--body-file", str(body),
                            "--timestamp", "1000000000", "--json").stdout)  # a delivery from 2001: stale
    header = "Stripe-Signature: " + signed["headers"]["Stripe-Signature"]
    base = ("webhook", "verify", "--scheme", "stripe", "--secret-env", "QA_WH_SECRET", "--body-file", str(body), "-H", header)
    assert cli(*base).exit_code == 1
    for tolerance in ("nan", "-5"):
        result = cli(*base, "--tolerance", tolerance)
        assert result.exit_code == 2, (tolerance, result.output)  # both used to accept the stale delivery (exit 0)
        _one_error_line(result, "config_error")


def test_a_mistyped_vendor_url_or_port_is_a_config_error_not_an_open_circuit(cli, home, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QA_SG_KEY", "SG.qa-key-000000000000")
    for url in ("not a url", "http://[::1", "ftp://127.0.0.1:9"):  # an internal error / transport failures before
        write_config(home, f"email_vendor: sendgrid\nvendors:\n  sendgrid: {{base_url: '{url}', credentials: {{api_key: 'env:QA_SG_KEY'}}}}\n")
        result = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x")
        assert result.exit_code == 2 and "vendors.sendgrid.base_url" in result.stderr, (url, result.output)
        _one_error_line(result, "config_error")
    write_config(home, "email_vendor: smtp\nvendors:\n  smtp: {host: 127.0.0.1, port: 99999}\n")
    result = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x")
    assert result.exit_code == 2 and "vendors.smtp.port" in result.stderr
    write_config(home, "email_vendor: file\n")
    assert json.loads(cli("circuit", "list", "--json").stdout)[0]["consecutive_failures"] == 0


def test_config_values_that_used_to_crash_at_use_time_are_config_errors(cli, home):  # type: ignore[no-untyped-def]
    cases = {
        "vendors:\n  file: {rate_limits: [{limit: 5}]}\n": "vendors.file.rate_limits[0]",  # TypeError before
        "email_vendor: fake\nretry_policy: {initial_delay_ms: -1}\nvendors:\n  fake: {fail_first: 1, fail_kind: timeout}\n": "retry_policy.initial_delay_ms",
        "vendors:\n  sendgrid: {auth_method: bogus}\n": "vendors.sendgrid.auth_method",
        "email_vendor: fake\nvendors:\n  fake: {latency_ms: -5}\n": "vendors.fake",
        "status: {healthy_min_success_rate: 80, degraded_min_success_rate: 95}\n": "status",
    }
    for text, key in cases.items():
        write_config(home, text)
        result = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x")
        assert result.exit_code == 2 and key in result.stderr, (text, result.output)
        _one_error_line(result, "config_error")
    write_config(home, "status: {healthy_min_success_rate: 100, degraded_min_success_rate: 0}\nretry_policy: {initial_delay_ms: 0}\n")
    assert cli("status", "--json").exit_code == 0


def test_creds_expires_at_outside_the_storable_range_is_invalid_input(cli, home, monkeypatch):  # type: ignore[no-untyped-def]
    import base64
    import io
    import os

    from connectorctl.credentials import masterkey

    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    masterkey.clear_cache()
    for when in ("9999-12-31T23:59:59-05:00", "0001-01-01"):  # an internal error; a row stored as '1-01-01T...'
        monkeypatch.setattr("sys.stdin", io.StringIO("SG.qa-secret-value-123"))
        result = cli("creds", "set", "sendgrid", "--stdin", "--expires-at", when)
        assert result.exit_code == 2, (when, result.output)
        _one_error_line(result, "invalid_input")
    assert json.loads(cli("creds", "list", "--json").stdout) == []
    monkeypatch.setattr("sys.stdin", io.StringIO("SG.qa-secret-value-123"))
    assert cli("creds", "set", "sendgrid", "--stdin", "--expires-at", "2099-01-01").exit_code == 0
    masterkey.clear_cache()


def test_a_vendor_error_body_nested_too_deep_is_still_a_clean_vendor_error(home):  # type: ignore[no-untyped-def]
    import httpx
    import pytest

    from connectorctl.config import load_settings
    from connectorctl.credentials.static import StaticCredentialProvider
    from connectorctl.domain.messages import EmailMessage
    from connectorctl.errors import ConnectorError
    from connectorctl.gateway import Connector
    from connectorctl.resilience.clock import FakeClock

    write_config(home, "email_vendor: sendgrid\nretry_policy: {max_attempts: 1}\n")
    deep = httpx.MockTransport(lambda request: httpx.Response(400, content=b"[" * 100000 + b"]" * 100000,
                                                              headers={"content-type": "application/json"}))
    connector = Connector(load_settings(), clock=FakeClock(), credentials=StaticCredentialProvider({"sendgrid": {"api_key": "SG.qa-0000000000000"}}),
                          transports={"sendgrid": deep})
    with pytest.raises(ConnectorError) as info:  # used to escape as a RecursionError (internal_error)
        connector.email().send(EmailMessage(to=("a@example.com",), subject="hi", text="x"))
    assert info.value.http_status == 400
    connector.close()


def test_a_secret_env_var_with_undecodable_bytes_is_one_clear_error(cli, home, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QA_BAD_SECRET", "SG.\udcff-not-utf8")  # how Python shows a 0xff byte from the environment
    write_config(home, "email_vendor: sendgrid\nvendors:\n  sendgrid: {base_url: 'http://127.0.0.1:9', credentials: {api_key: 'env:QA_BAD_SECRET'}}\n")
    sent = cli("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x")
    assert sent.exit_code == 5, sent.output
    _one_error_line(sent, "credential_unreadable")
    body = tmp_path / "body.json"
    body.write_bytes(b"{}")
    signed = cli("webhook", "sign", "--scheme", "github", "--secret-env", "QA_BAD_SECRET", "--body-file", str(body))
    assert signed.exit_code == 2, signed.output  # both used to be internal UnicodeEncodeErrors
    _one_error_line(signed, "invalid_input")


def test_a_lone_surrogate_in_a_value_neither_kills_the_log_writer_nor_loses_rows(home):  # type: ignore[no-untyped-def]
    import sqlite3

    from connectorctl.config import load_settings
    from connectorctl.domain.messages import EmailMessage
    from connectorctl.gateway import Connector

    write_config(home, "email_vendor: file\n")  # the background writer (the default)
    connector = Connector(load_settings())
    message = EmailMessage(to=("a@example.com",), subject="hi", text="x")
    assert connector.email(tenant_id="t\udcff").send(message).ok  # e.g. a tenant id from undecodable argv bytes
    for hook in connector.pipeline.hooks:  # let the background writer commit the first row on its own
        getattr(hook, "flush", lambda: None)()
    assert connector.email(tenant_id="t2").send(message).ok  # the writer used to be dead by now
    connector.close()
    rows = sqlite3.connect(home / "connectorctl.db").execute("SELECT tenant_id FROM integration_logs ORDER BY seq").fetchall()
    assert rows == [("t\\udcff",), ("t2",)]


def test_undecodable_command_line_bytes_are_one_usage_error(cli, home):  # type: ignore[no-untyped-def]
    cli("init")
    for args in (("logs", "list", "--service", "s\udcff"), ("circuit", "trip", "file", "--reason", "r\udcff"),
                 ("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x", "--tenant", "t\udcff")):
        result = cli(*args)  # internal UnicodeEncodeErrors (and a log-writer traceback) before
        assert result.exit_code == 2, (args, result.output)
        _one_error_line(result, "invalid_input")


def test_config_numbers_too_large_to_store_or_schedule_are_config_errors(cli, home):  # type: ignore[no-untyped-def]
    cases = {
        "vendors:\n  file: {rate_limits: [{limit: 100000000000000000000000, per_seconds: 1}]}\n": "vendors.file.rate_limits[0].limit",
        "status: {window_minutes: 100000000000000}\n": "status.window_minutes",  # internal OverflowErrors before
        "circuit_breaker: {timeout_seconds: 1.0e+300}\n": "circuit_breaker.timeout_seconds",  # an unshowable open_until
    }
    for text, key in cases.items():
        write_config(home, "email_vendor: file\n" + text)
        for args in (("send", "email", "--to", "a@example.com", "-s", "hi", "--body", "x"), ("status",)):
            result = cli(*args)
            assert result.exit_code == 2 and key in result.stderr, (text, args, result.output)
            _one_error_line(result, "config_error")


def test_library_trip_with_an_absurd_duration_is_refused_before_anything_is_stored(cli, home):  # type: ignore[no-untyped-def]
    import pytest

    from connectorctl.errors import InvalidInputError
    from connectorctl.gateway import Connector
    from connectorctl.resilience.circuit import CircuitBreaker

    cli("init")
    with Connector() as connector:
        breaker = CircuitBreaker(connector.db, connector.settings.circuit_breaker, connector.clock)
        for bad in (1e300, float("nan"), 0, -5):
            with pytest.raises(InvalidInputError):
                breaker.trip("file", reason="x", for_seconds=bad)
    listed = cli("circuit", "list", "--json")  # 1e300 used to be stored and break this for good
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["state"] == "closed"
