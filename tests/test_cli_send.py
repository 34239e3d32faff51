"""`connectorctl send` end to end through the file sink, as a user runs it."""

from __future__ import annotations

import email
import email.policy
import json
import sqlite3
from pathlib import Path

from tests.conftest import run_cli_process, write_config


def test_send_email_through_the_file_sink_as_a_real_process(home: Path, tmp_path: Path) -> None:
    assert run_cli_process("init").returncode == 0
    attachment = tmp_path / "invoice.pdf"
    attachment.write_bytes(b"%PDF-1.4 fake")
    body = tmp_path / "body.html"
    body.write_text("<h1>Invoice</h1><p>Total: 10 EUR</p>")
    proc = run_cli_process(
        "send", "email", "--to", "Customer@Example.com", "--cc", "boss@example.com", "--subject", "Invoice 42",
        "--body-file", str(body), "--html", "--attach", str(attachment), "--header", "X-Order: 42", "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["ok"] is True and result["vendor"] == "file"
    assert [r["recipient"] for r in result["recipients"]] == ["Customer@example.com", "boss@example.com"]
    eml = home / "outbox" / f"{result['message_id']}.eml"
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Invoice 42" and msg["To"] == "Customer@example.com" and msg["X-Order"] == "42"
    assert msg["From"] == "Example ERP <erp@example.com>"  # sender identity from the starter config
    parts = {p.get_content_type() for p in msg.walk()}
    assert {"text/plain", "text/html", "application/pdf"} <= parts
    assert "Total: 10 EUR" in msg.get_body(("plain",)).get_content()
    row = sqlite3.connect(home / "connectorctl.db").execute(
        "SELECT service_name, operation, status, correlation_id FROM integration_logs").fetchone()
    assert row == ("file", "send_email", "success", result["correlation_id"])


def test_send_sms_normalises_the_number_and_prints_a_table(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    result = cli("send", "sms", "--to", "+1 (415) 555-0123", "--message", "Your order shipped")
    assert result.exit_code == 0, result.stderr
    assert "+14155550123" in result.stdout and "accepted" in result.stdout
    saved = json.loads(next((home / "outbox").glob("*.sms.json")).read_text())
    assert saved["to"] == "+14155550123" and saved["body"] == "Your order shipped"


def test_invalid_input_is_rejected_before_any_call(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    for args, needle in (
        (("send", "email", "--to", "not-an-address", "--subject", "s", "--body", "b"), "invalid email address"),
        (("send", "email", "--to", "a@example.com", "--subject", "s"), "exactly one of --body or --body-file"),
        (("send", "sms", "--to", "12", "--message", "hi"), "invalid phone number"),
        (("send", "sms", "--to", "+99912345", "--message", "hi"), "invalid phone number"),
        (("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b", "--vendor", "nope"), "unknown email vendor 'nope'"),
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.stderr)
        assert needle in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (home / "outbox").exists()


def test_exit_codes_for_vendor_failures(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "email_vendor: fake\nretry_policy: {max_attempts: 1}\ncircuit_breaker: {failure_threshold: 1}\n"
                       "vendors:\n  fake: {fail_kind: '503', fail_rate: 1.0}\n")
    args = ("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b", "--json")
    first = cli(*args)
    assert first.exit_code == 1 and "vendor_unavailable" in first.stderr
    second = cli(*args)
    assert second.exit_code == 3 and "circuit_open" in second.stderr
    other = home.parent / "other-home"
    write_config(other, "email_vendor: fake\nvendors:\n  fake: {fail_kind: '401', fail_rate: 1.0}\n")
    auth = run_cli_process(*args, env={"CONNECTORCTL_HOME": str(other)})
    assert auth.returncode == 5 and "auth_failed" in auth.stderr


def test_no_color_and_usage_errors(home: Path) -> None:
    proc = run_cli_process("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b", env={"NO_COLOR": "1", "TERM": "xterm-256color"})
    assert proc.returncode == 0 and "\x1b[" not in proc.stdout + proc.stderr
    usage = run_cli_process("send", "email", "--subject", "s")
    assert usage.returncode == 2 and "--to" in usage.stderr and "Traceback" not in usage.stderr


def test_a_closed_pipe_ends_quietly(home: Path) -> None:
    import subprocess
    import sys

    from tests.conftest import ROOT

    from connectorctl.gateway import Connector
    from connectorctl.resilience.pipeline import Call, VendorResponse

    with Connector() as connector:  # more rows than a pipe buffer holds
        for _ in range(500):
            connector.pipeline.execute(Call("file", "send_email", request_data={"pad": "x" * 200}), lambda: VendorResponse(None))
    # a reader that leaves after one line, like `| head -1`
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "logs", "list", "-o", "jsonl", "--limit", "500"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert b"Traceback" not in err and b"error" not in err
    assert proc.returncode in (0, -13)  # done, or ended by SIGPIPE like cat and grep


def test_an_sms_the_vendor_may_have_sent_exits_9_like_any_uncertain_outcome(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "sms_vendor: fake\nvendors:\n  fake: {fail_kind: timeout, fail_rate: 1.0}\n")
    result = cli("send", "sms", "--to", "+14155550123", "--message", "Your order shipped", "-o", "json")
    assert result.exit_code == 9, result.output
    sent = json.loads(result.stdout)
    assert sent["ok"] is False and sent["recipients"][0]["status"] == "uncertain"
    assert "check the vendor's message log before sending again" in sent["recipients"][0]["reason"]
