"""Bad input ends as exit 2 with one error line: never a traceback, never ``internal_error`` (exit 1).

First one regression test per input that used to crash, then a property-based run (hypothesis)
over config documents and over the values of CLI options.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import write_config

ONE_RUN = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_input_error(result, *, contains: str = "") -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal_error" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, result.stderr
    assert contains in errors[0]


def billion_laughs(field: str) -> str:
    """Ten levels of nine aliases each: a few hundred bytes, 10^9 strings once expanded."""
    doc = '[&x0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
    for i in range(1, 10):
        doc += f", &x{i} [" + ",".join([f"*x{i - 1}"] * 9) + "]"
    section, _, key = field.rpartition(".")
    if section == "logging":
        return f"logging:\n  {key}: {doc}]\n"
    return f"vendors:\n  file:\n    {key}: {doc}]\n"


# -- regressions ------------------------------------------------------------------------------
def test_an_attachment_file_name_with_a_line_break_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name in ("evil\nBcc: x@example.com.txt", "evil\r.txt"):
        path = tmp_path / name
        path.write_text("hi")
        result = cli("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "x", "--attach", str(path))
        assert_input_error(result, contains="line break")


@pytest.mark.parametrize("args", [
    ("logs", "list", "--since", "9999-12-31T23:59:59-23:59"),
    ("logs", "list", "--until", "0001-01-01T00:00:00+23:59"),
    ("logs", "tail", "--since", "9999-12-31T23:59:59-23:59"),
    ("metrics", "--until", "0001-01-01T00:00:00+23:59"),
    ("metrics", "--since", "9999-12-31T23:59:59-23:59"),
])
def test_dates_that_overflow_in_utc_are_out_of_range(cli, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    assert_input_error(cli(*args), contains="out of range")


def test_a_config_nested_5000_levels_deep_is_a_config_error(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "email_vendor: " + "[" * 5000 + "]" * 5000 + "\n")
    assert_input_error(cli("config", "show"), contains="levels deep")
    write_config(home, "vendors:\n  file:\n    from_name: " + "[" * 40 + "]" * 40 + "\n")  # deep, but not enough to recurse out
    assert_input_error(cli("config", "show"), contains="levels deep")


@pytest.mark.parametrize("field", ["vendors.file.from_name", "logging.redact_fields", "vendors.file.outbox"])
def test_a_billion_laughs_document_is_refused_without_expanding_it(cli, home: Path, field: str) -> None:  # type: ignore[no-untyped-def]
    write_config(home, billion_laughs(field))
    result = cli("config", "show")
    assert_input_error(result, contains="aliases expand")
    assert len(result.stderr) < 500


def test_a_modest_alias_in_a_wrong_place_is_reported_short(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    write_config(home, "logging:\n  redact_fields: &x [a, b]\nvendors:\n  file:\n    from_name: [*x, *x, *x, " + ", ".join(["long" * 50] * 50) + "]\n")
    result = cli("config", "show")
    assert_input_error(result, contains="expected a string")
    assert len(result.stderr) < 400


def test_an_endless_config_file_is_refused(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONNECTORCTL_CONFIG", "/dev/zero")
    assert_input_error(cli("config", "show"), contains="larger than")


@pytest.mark.parametrize("args", [
    ("send", "email", "--to", "a@example.com", "--subject", "s", "--body-file", "/dev/zero"),
    ("send", "email", "--to", "a@example.com", "--subject", "s", "--body", "x", "--attach", "/dev/zero"),
    ("webhook", "verify", "--scheme", "github", "--secret-env", "GH_SECRET", "--body-file", "/dev/zero"),
])
def test_endless_input_files_are_refused(cli, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GH_SECRET", "s3cret-value")
    assert_input_error(cli(*args), contains="larger than")


def test_an_endless_recipient_file_is_refused(cli) -> None:  # type: ignore[no-untyped-def]
    assert_input_error(cli("send", "sms", "--to-file", "/dev/zero", "--message", "hi"), contains="larger than")


# -- property-based ---------------------------------------------------------------------------
KEYS = ("email_vendor", "sms_vendor", "log_retention_days", "circuit_breaker", "retry_policy", "logging", "status",
        "vendors", "webhooks", "database", "master_key_file", "failure_threshold", "timeout_seconds", "max_attempts",
        "redact_fields", "store_bodies", "writer", "file", "fake", "sendgrid", "twilio", "base_url", "rate_limits",
        "limit", "per_seconds", "from_name", "outbox", "scheme", "secret_env", "allow_sha1", "window_minutes",
        "audit_spool", "max_staleness_seconds")
# Pieces of database URLs and file paths: each character that has a meaning in one of them.
URL_TEXT = st.text(alphabet=st.sampled_from("aZ09@:/?#%&=[]. -_~\x00é"), max_size=8)
URLS = st.builds("postgresql://{}:{}@{}:{}/{}{}".format, URL_TEXT, URL_TEXT, URL_TEXT, URL_TEXT, URL_TEXT,
                 st.sampled_from(["", "?sslmode=require", "?sslmode=odd", "?host=/tmp", "?password=x", "?odd=1"]))
PATHS = st.one_of(URL_TEXT, st.sampled_from(["/", "/dev/null", "/etc/hostname/x", "~nobody-here/x", "n" * 300]))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["file", "fake", "sendgrid", "twilio", "http://127.0.0.1:9", "1e400", "-1", "0", "nan", ".inf", "~"]),
    URLS, PATHS,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=4)),
    max_leaves=20,
)
DOCUMENTS = st.one_of(
    st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5).map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(max_size=200),  # not even YAML, or YAML of any shape
    st.builds(lambda key, depth: f"{key}: " + "[" * depth + "]" * depth, st.sampled_from(KEYS), st.integers(0, 300)),
    st.builds(lambda key, value: yaml.safe_dump({key: value}), st.sampled_from(["database", "audit_spool"]),
              st.one_of(URLS, PATHS)),
    st.builds(lambda value: yaml.safe_dump({"circuit_breaker": {"max_staleness_seconds": value}}), SCALARS),
)


@ONE_RUN
@given(document=DOCUMENTS)
def test_any_config_document_loads_or_is_one_config_error(cli, home: Path, document: str) -> None:  # type: ignore[no-untyped-def]
    write_config(home, document)
    result = cli("config", "show", "-o", "json")
    if result.exit_code != 0:
        assert_input_error(result)


TEXT = st.one_of(st.text(max_size=40), st.sampled_from([
    "", " ", "-", "--", "0", "-1", "1e400", "nan", "9" * 40, "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59",
    "99999999999d", "-30days", "1h", "now", "2026-02-30", "+14155550123", "a@example.com", "\x00", "a\nb", "é" * 10,
]))
COMMANDS = st.one_of(
    st.tuples(st.just(("logs", "list")), st.sampled_from(["--since", "--until", "--limit", "--offset", "--status", "--service"]), TEXT),
    st.tuples(st.just(("metrics",)), st.sampled_from(["--since", "--until", "--buckets", "--by"]), TEXT),
    st.tuples(st.just(("circuit", "trip", "fake")), st.sampled_from(["--for", "--reason"]), TEXT),
    st.tuples(st.just(("send", "email", "--subject", "s", "--body", "b")), st.sampled_from(["--to", "--cc", "--header", "--from"]), TEXT),
    st.tuples(st.just(("send", "sms", "--message", "m")), st.sampled_from(["--to", "--from"]), TEXT),
    # never a URL that could work: db copy would then connect
    st.tuples(st.just(("db", "copy")), st.just("--to"), st.one_of(TEXT, URLS.map(lambda url: url + "&sslmode=odd"))),
    st.tuples(st.just(("db", "copy", "--to", "postgresql:///db?sslmode=odd")), st.just("--batch-size"), TEXT),
    st.tuples(st.sampled_from([("db", "drain-spool"), ("db", "check"), ("status",)]), st.just("-o"), TEXT),
)


@ONE_RUN
@given(user=URL_TEXT, password=URL_TEXT, rest=URL_TEXT)
def test_a_database_url_password_is_never_shown_however_the_url_is_garbled(  # type: ignore[no-untyped-def]
    cli, home: Path, user: str, password: str, rest: str
) -> None:
    """The password carries a marker; whatever libpq makes of the URL, no output shows the marker."""
    write_config(home, yaml.safe_dump({"database": f"postgresql://{user}:Pw7{password}Secret@{rest}/db"}))
    result = cli("config", "show", "-o", "json")
    if result.exit_code != 0:
        assert_input_error(result)
    assert "Pw7" not in result.output and "Secret" not in result.output


@ONE_RUN
@given(command=COMMANDS)
def test_any_option_value_is_accepted_or_one_usage_error(cli, command: tuple[tuple[str, ...], str, str]) -> None:  # type: ignore[no-untyped-def]
    words, option, value = command
    result = cli(*words, f"{option}={value}")
    if result.exit_code != 0:
        assert_input_error(result)
