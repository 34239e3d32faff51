"""``connectorctl webhook sign|verify``: round trips for every scheme (and one through real processes), exit codes, secret sources."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli_process, write_config
from tests.webhooks.webhook_cases import CASES, CASE_IDS, Case

FLAGS = {"header": "--signature-header", "algorithm": "--algorithm", "encoding": "--encoding", "prefix": "--prefix",
         "signed_content": "--signed-content", "timestamp_header": "--timestamp-header", "id_header": "--id-header", "url": "--url"}


def option_args(case: Case) -> list[str]:
    args = []
    for key, value in case.options.items():
        args += [FLAGS[key], value]
    return args


def header_args(headers: dict[str, str]) -> list[str]:
    return [arg for name, value in headers.items() for arg in ("--header", f"{name}: {value}")]


def verify_args(case: Case, signed: dict[str, Any], body_file: Path) -> list[str]:
    args = ["webhook", "verify", "--scheme", case.scheme, "--secret-env", "VERIFY_SECRET", "--body-file", str(body_file)]
    args += option_args(case) + header_args(signed["headers"])
    if signed["url"]:
        args += ["--url", signed["url"]]
    return args


def sign_process(case: Case, tmp_path: Path, *extra: str) -> tuple[dict[str, Any], Path]:
    (tmp_path / "in.body").write_bytes(case.body)
    out = tmp_path / "out.body"
    result = run_cli_process("webhook", "sign", "--scheme", case.scheme, "--secret-env", "SIGN_SECRET", "--body-file", str(tmp_path / "in.body"),
                             "--body-out", str(out), "--json", *option_args(case), *extra, env={"SIGN_SECRET": case.sign_secret})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), out


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sign_output_verifies_with_verify(case: Case, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in.body").write_bytes(case.body)
    body_file = tmp_path / "out.body"
    monkeypatch.setenv("SIGN_SECRET", case.sign_secret)
    result = cli("webhook", "sign", "--scheme", case.scheme, "--secret-env", "SIGN_SECRET", "--body-file", str(tmp_path / "in.body"),
                 "--body-out", str(body_file), "--json", *option_args(case))
    assert result.exit_code == 0, result.stderr
    signed = json.loads(result.stdout)
    monkeypatch.setenv("VERIFY_SECRET", case.verify_secret)
    ok = cli(*verify_args(case, signed, body_file), "--json")
    assert ok.exit_code == 0, ok.stderr
    verdict = json.loads(ok.stdout)
    assert verdict["ok"] is True and verdict["reason"] == "ok"
    for secret in (case.sign_secret, case.verify_secret):
        assert secret not in ok.output
    body_file.write_bytes(body_file.read_bytes().replace(b"e", b"E", 1) if case.scheme not in ("postmark", "mailgun") else body_file.read_bytes())
    if case.scheme in ("postmark", "mailgun"):
        monkeypatch.setenv("VERIFY_SECRET", case.wrong_secret)
    bad = cli(*verify_args(case, signed, body_file))
    assert bad.exit_code == 1
    assert "[bad_signature]" in bad.stderr and "Traceback" not in bad.stderr


def test_sign_and_verify_in_real_processes_with_the_body_from_stdin(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.scheme == "github")
    signed, body_file = sign_process(case, tmp_path)
    args = verify_args(case, signed, body_file)
    args[args.index(str(body_file))] = "-"
    result = run_cli_process(*args, "--json", env={"VERIFY_SECRET": case.verify_secret}, input=case.body.decode())
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert case.sign_secret not in result.stdout + result.stderr and case.verify_secret not in result.stdout + result.stderr
    tampered = run_cli_process(*args, env={"VERIFY_SECRET": case.verify_secret}, input=case.body.decode().replace("e", "E", 1))
    assert tampered.returncode == 1 and "[bad_signature]" in tampered.stderr and "Traceback" not in tampered.stderr


@pytest.fixture
def stripe_signed(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STRIPE_WHSEC", "whsec_cli_secret_value")
    body = tmp_path / "event.json"
    body.write_bytes(CASES[0].body)

    def sign(*extra: str) -> list[str]:
        result = cli("webhook", "sign", "--scheme", "stripe", "--secret-env", "STRIPE_WHSEC", "--body-file", str(body), "--json", *extra)
        assert result.exit_code == 0, result.stderr
        return ["webhook", "verify", "--scheme", "stripe", "--secret-env", "STRIPE_WHSEC", "--body-file", str(body),
                *header_args(json.loads(result.stdout)["headers"])]

    return sign, body


def test_exit_codes_and_reasons(cli: Any, stripe_signed: Any) -> None:
    sign, body = stripe_signed
    verify = sign()
    ok = cli(*verify)
    assert ok.exit_code == 0 and "evt_1NG8Du2eZvKYlo2CUI79vXWy" in ok.stdout
    stale = cli(*sign("--timestamp", str(int(time.time()) - 3600)))
    assert stale.exit_code == 1 and "[stale]" in stale.stderr
    assert cli(*sign("--timestamp", str(int(time.time()) - 3600)), "--tolerance", "7200").exit_code == 0
    missing = cli(*verify[:-2])
    assert missing.exit_code == 1 and "[missing_header]" in missing.stderr
    malformed = cli(*verify[:-1], "Stripe-Signature: v1=abc")
    assert malformed.exit_code == 1 and "[malformed_header]" in malformed.stderr
    as_json = cli(*verify[:-1], "Stripe-Signature: v1=abc", "--json")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["reason"] == "malformed_header"
    body.write_bytes(body.read_bytes() + b" ")
    tampered = cli(*verify)
    assert tampered.exit_code == 1 and "[bad_signature]" in tampered.stderr
    assert "whsec_cli_secret_value" not in ok.output + stale.output + tampered.output + as_json.output


def test_check_replay_refuses_the_second_verification(cli: Any, stripe_signed: Any) -> None:
    sign, _ = stripe_signed
    verify = sign()
    assert cli(*verify, "--check-replay").exit_code == 0
    again = cli(*verify, "--check-replay")
    assert again.exit_code == 1 and "[replay]" in again.stderr
    assert cli(*verify).exit_code == 0  # without the flag verification is stateless


def test_secret_problems_are_usage_errors(cli: Any, tmp_path: Path) -> None:
    body = tmp_path / "b"
    body.write_bytes(b"{}")
    unset = cli("webhook", "verify", "--scheme", "github", "--secret-env", "NOT_SET_ANYWHERE", "--body-file", str(body), "-H", "X-Hub-Signature-256: sha256=00")
    assert unset.exit_code == 2 and "NOT_SET_ANYWHERE" in unset.stderr
    none = cli("webhook", "verify", "--scheme", "github", "--body-file", str(body))
    assert none.exit_code == 2 and "--secret-env" in none.stderr
    bad_header = cli("webhook", "verify", "--scheme", "github", "--body-file", str(body), "-H", "no colon here")
    assert bad_header.exit_code == 2
    unknown = cli("webhook", "sign", "--scheme", "carrier-pigeon", "--body-file", str(body))
    assert unknown.exit_code == 2 and "unknown webhook scheme" in unknown.stderr
    missing_file = cli("webhook", "sign", "--scheme", "github", "--secret-env", "PATH", "--body-file", str(tmp_path / "nope"))
    assert missing_file.exit_code == 2 and "Traceback" not in missing_file.output


def test_secret_from_creds_uses_the_credential_store(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectorctl.cli import output
    from connectorctl.config import load_settings
    from connectorctl.credentials.static import StaticCredentialProvider
    from connectorctl.gateway import Connector

    connector = Connector(load_settings(), credentials=StaticCredentialProvider({"github": {"secret": "stored-github-secret"}, "empty": {"username": "u"}}))
    monkeypatch.setattr(output.CliState, "connector", lambda self: connector)
    body = tmp_path / "b"
    body.write_bytes(b'{"zen":"x"}')
    signed = cli("webhook", "sign", "--scheme", "github", "--secret-from-creds", "github", "--body-file", str(body), "--json")
    assert signed.exit_code == 0, signed.stderr
    headers = json.loads(signed.stdout)["headers"]
    result = cli("webhook", "verify", "--scheme", "github", "--secret-from-creds", "github", "--body-file", str(body), *header_args(headers))
    assert result.exit_code == 0, result.stderr
    assert "stored-github-secret" not in signed.output + result.output
    missing = cli("webhook", "verify", "--scheme", "github", "--secret-from-creds", "nobody", "--body-file", str(body), *header_args(headers))
    assert missing.exit_code != 0 and "nobody" in missing.stderr
    no_field = cli("webhook", "verify", "--scheme", "github", "--secret-from-creds", "empty", "--body-file", str(body), *header_args(headers))
    assert no_field.exit_code == 2 and "secret, api_key, token" in no_field.stderr


def test_service_option_takes_scheme_options_and_secrets_from_config(cli: Any, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home, "webhooks:\n  mandrill:\n    scheme: mandrill\n    url: https://erp.example.com/hooks/mandrill\n    secret_env: [MANDRILL_KEY]\n")
    monkeypatch.setenv("MANDRILL_KEY", "mandrill-config-key")
    body, out = tmp_path / "b", tmp_path / "o"
    body.write_bytes(b'[{"event":"open"}]')
    signed = cli("webhook", "sign", "--service", "mandrill", "--body-file", str(body), "--body-out", str(out), "--json")
    assert signed.exit_code == 0, signed.stderr
    data = json.loads(signed.stdout)
    assert data["url"] == "https://erp.example.com/hooks/mandrill" and out.read_bytes().startswith(b"mandrill_events=")
    result = cli("webhook", "verify", "--service", "mandrill", "--body-file", str(out), *header_args(data["headers"]), "-o", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["event_type"] == "open"


def test_every_webhook_command_has_help(cli: Any) -> None:
    for command in ("verify", "sign"):
        result = cli("webhook", command, "--help")
        assert result.exit_code == 0 and "--secret-env" in result.stdout and "--body-file" in result.stdout
    assert "Verify vendor webhook signatures" in cli("webhook", "--help").stdout
