"""Configuration: defaults of the reference design, lookup order, env overrides, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dataclasses

from connectorctl.config import CircuitBreakerSettings, LoggingSettings, RetrySettings, StatusSettings, VendorSettings, load_settings
from connectorctl.errors import ConfigurationError
from tests.conftest import ROOT, run_cli_process, write_config


def test_defaults_match_the_reference_design(home: Path) -> None:
    s = load_settings()
    assert (s.circuit_breaker.failure_threshold, s.circuit_breaker.timeout_seconds) == (5, 60.0)
    r = s.retry_policy
    assert (r.max_attempts, r.initial_delay_ms, r.multiplier, r.max_delay_ms) == (3, 1000, 2.0, 30000)
    assert s.log_retention_days == 90
    assert s.database == home / "connectorctl.db"
    assert s.outbox_dir() == home / "outbox"
    assert s.config_path is None


def test_config_example_documents_every_key_with_its_default() -> None:
    example = load_settings(ROOT / "config.example.yaml")
    defaults = load_settings()
    from connectorctl.config import flatten

    ex, de = flatten(example), flatten(defaults)
    ex.pop("config_path"), de.pop("config_path")
    assert {k: v for k, v in ex.items() if not k.startswith("vendors.")} == de
    text = (ROOT / "config.example.yaml").read_text()

    for cls in (CircuitBreakerSettings, RetrySettings, LoggingSettings, StatusSettings):
        for f in dataclasses.fields(cls):
            assert f"{f.name}:" in text, f"config.example.yaml does not document {cls.__name__}.{f.name}"


def test_config_example_shows_every_vendors_declared_options_with_their_defaults() -> None:
    """Shared keys under ``file``; each vendor's own keys, exactly, under its slug: adding an option to a
    vendor's options class without documenting it (or leaving a removed one behind) fails here."""
    import yaml

    from connectorctl.adapters.catalog import declaration, known_slugs

    example = load_settings(ROOT / "config.example.yaml")
    sections = yaml.safe_load((ROOT / "config.example.yaml").read_text())["vendors"]
    shared = {f.name for f in dataclasses.fields(VendorSettings)}
    assert shared <= set(sections["file"])
    for slug in known_slugs():
        vendor = declaration(slug)
        assert vendor is not None
        own = {f.name for f in dataclasses.fields(vendor.options)} - shared
        documented = set(sections.get(slug) or {}) - (shared if slug == "file" else set())
        assert documented == own, f"config.example.yaml vendors.{slug} should show exactly {sorted(own)}"
        if own:
            assert example.vendor(slug) == vendor.options(), f"vendors.{slug} in config.example.yaml differs from the defaults"


def test_lookup_order_explicit_then_env_then_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home, "log_retention_days: 10\n")
    assert load_settings().log_retention_days == 10
    env_file = tmp_path / "env.yaml"
    env_file.write_text("log_retention_days: 20\n")
    monkeypatch.setenv("CONNECTORCTL_CONFIG", str(env_file))
    assert load_settings().log_retention_days == 20
    explicit = tmp_path / "explicit.yaml"
    explicit.write_text("log_retention_days: 30\n")
    assert load_settings(explicit).log_retention_days == 30


def test_environment_overrides_win_and_are_reported(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(home, "email_vendor: console\ncircuit_breaker:\n  failure_threshold: 9\n")
    monkeypatch.setenv("CONNECTOR_EMAIL_VENDOR", "fake,file")
    monkeypatch.setenv("CONNECTOR_SMS_VENDOR", "console")
    monkeypatch.setenv("CONNECTOR_LOG_RETENTION_DAYS", "7")
    monkeypatch.setenv("CONNECTOR_CIRCUIT_FAILURE_THRESHOLD", "2")
    monkeypatch.setenv("CONNECTOR_CIRCUIT_TIMEOUT", "15")
    s = load_settings()
    assert s.email_vendor == ("fake", "file")
    assert s.sms_vendor == ("console",)
    assert s.log_retention_days == 7
    assert s.circuit_breaker.failure_threshold == 2
    assert s.circuit_breaker.timeout_seconds == 15.0
    assert s.sources["email_vendor"] == "env:CONNECTOR_EMAIL_VENDOR"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email_vendor: [file\n", ":2: malformed YAML"),
        ("log_retention_days: 3\n\tbad: tab\n", ":2: malformed YAML"),
        ("circuit_breaker:\n  failure_treshold: 3\n", ":2: circuit_breaker.failure_treshold: unknown key"),
        ("circuit_breaker:\n  failure_threshold: many\n", ":2: circuit_breaker.failure_threshold: expected an integer"),
        ("retry_policy:\n  jitter: 3\n", ":2: retry_policy.jitter: expected true or false"),
        ("email_vendor: mailchump\n", ":1: email_vendor: unknown email vendor 'mailchump'"),
        ("vendors:\n  sendgird:\n    base_url: x\n", ":2: vendors.sendgird: unknown vendor"),
        ("vendors:\n  file:\n    rate_limits: 5\n", ":3: vendors.file.rate_limits: expected a list"),
        ("- a\n- b\n", "(top level): expected a mapping"),
        ("circuit_breaker:\n  failure_threshold: 0\n", "circuit_breaker.failure_threshold: must be at least 1"),
    ],
)
def test_config_errors_are_one_line_naming_file_key_and_line(home: Path, text: str, expected: str) -> None:
    path = write_config(home, text)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert str(path) in str(info.value)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_environment_override_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_CIRCUIT_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="CONNECTOR_CIRCUIT_TIMEOUT: expected a number"):
        load_settings()


def test_cli_config_error_exits_2_with_one_line_and_no_traceback(home: Path) -> None:
    write_config(home, "circuit_breaker:\n  failure_threshold: [1, 2]\n")
    proc = run_cli_process("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "config.yaml:2: circuit_breaker.failure_threshold: expected an integer" in proc.stderr
    debug = run_cli_process("--debug", "send", "email", "--to", "a@example.com", "--subject", "s", "--body", "b")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


def test_missing_explicit_config_file(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--config", str(tmp_path / "nope.yaml"), "config", "show")
    assert result.exit_code == 2
    assert "config file not found" in result.stderr and "connectorctl init" in result.stderr


def test_init_then_config_show_reports_sources(home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    first = cli("init", "--json")
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["config_written"] is True
    assert (home / "config.yaml").exists() and (home / "connectorctl.db").exists()
    again = cli("init", "--json")
    assert json.loads(again.stdout)["config_written"] is False  # never clobbers an operator's file
    shown = cli("config", "show", "--json")
    values = json.loads(shown.stdout)["values"]
    assert values["email_vendor"] == {"value": ["file"], "source": f"{home / 'config.yaml'}:5"}
    assert values["log_retention_days"]["value"] == 90
    assert values["circuit_breaker.failure_rate_threshold"]["source"] == "default"
    table = cli("config", "show")
    assert "circuit_breaker.failure_threshold" in table.stdout


def test_a_mistyped_variable_is_warned_about_with_the_closest_name(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    from connectorctl.config import load_settings
    from connectorctl.envcheck import ConfigWarning

    monkeypatch.setenv("CONNECTOR_EMAIL_VENDER", "postmark")
    monkeypatch.setenv("CONNECTORCTL_MASTERKEY", "x")
    monkeypatch.setenv("CONNECTOR_ZZZ", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        settings = load_settings()
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, ConfigWarning))
    assert messages == [
        "environment variable CONNECTORCTL_MASTERKEY is not used by connectorctl; did you mean CONNECTORCTL_MASTER_KEY?",
        "environment variable CONNECTOR_EMAIL_VENDER is not used by connectorctl; did you mean CONNECTOR_EMAIL_VENDOR?",
        "environment variable CONNECTOR_ZZZ is not used by connectorctl",
    ]
    assert settings.email_vendor == ("file",)  # ignored, as the warning says
    result = cli("config", "show", "-o", "json")
    assert result.exit_code == 0
    assert "warning: environment variable CONNECTOR_EMAIL_VENDER is not used by connectorctl; did you mean CONNECTOR_EMAIL_VENDOR?" in result.stderr
    assert "UserWarning" not in result.stderr and "ConfigWarning" not in result.stderr
