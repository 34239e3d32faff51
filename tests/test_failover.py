"""The vendor chain: fail over on open circuits and surviving transient failures, never on permanent ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_sms_vendors import TWILIO_SID, TWILIO_TOKEN, VONAGE_KEY, VONAGE_SECRET, FakeTwilio, FakeVonage
from test_sms_twilio import log_rows

from connectorctl.adapters.catalog import VENDORS
from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.sinks import FileEmailAdapter
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, SmsMessage
from connectorctl.errors import ValidationError, VendorTimeoutError, VendorUnavailableError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

MAIL = EmailMessage(to=("ann@example.com",), subject="Invoice 42", text="Attached.")


def connector(home: Path, cfg: dict[str, Any], creds: dict[str, Any] | None = None) -> Connector:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Connector(config_path=path, clock=FakeClock(), credentials=StaticCredentialProvider(creds or {}))


def outbox(home: Path) -> list[Path]:
    return sorted((home / "outbox").glob("*")) if (home / "outbox").exists() else []


def test_open_circuit_fails_over_and_every_hop_shares_the_correlation_id(home: Path) -> None:
    conn = connector(home, {"email_vendor": ["fake", "file"], "vendors": {"fake": {"fail_kind": "503", "fail_first": 1000}}})
    conn.pipeline.breaker.trip("fake", reason="maintenance")
    result = conn.email().send(MAIL)
    assert result.ok and result.vendor == "file" and len(outbox(home)) == 1
    rows = log_rows(conn)
    assert [(r["service_name"], r["status"]) for r in rows] == [("fake", "circuit_open"), ("file", "success")]
    assert {r["correlation_id"] for r in rows} == {result.correlation_id}


def test_repeated_503_fails_over_after_the_retries(home: Path) -> None:
    conn = connector(home, {"email_vendor": ["fake", "file"], "vendors": {"fake": {"fail_kind": "503", "fail_first": 1000}}})
    result = conn.email().send(MAIL)
    assert result.vendor == "file"
    rows = log_rows(conn)
    assert [(r["service_name"], r["status"], r["attempt_number"]) for r in rows] == [
        ("fake", "failed", 1), ("fake", "failed", 2), ("fake", "failed", 3), ("file", "success", 1)]
    assert {r["correlation_id"] for r in rows} == {result.correlation_id}


def test_a_400_never_fails_over(home: Path) -> None:
    conn = connector(home, {"email_vendor": ["fake", "file"], "vendors": {"fake": {"fail_kind": "400", "fail_first": 1000}}})
    with pytest.raises(ValidationError):
        conn.email().send(MAIL)
    assert outbox(home) == [] and [r["service_name"] for r in log_rows(conn)] == ["fake"]


class TextOnlyEmailAdapter(FileEmailAdapter):
    capabilities = frozenset({"cc", "bcc"})


def test_a_vendor_lacking_a_feature_is_skipped_with_a_logged_reason(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(VENDORS, "textonly", Vendor("textonly", "test", {"email": TextOnlyEmailAdapter}, auth=()))
    conn = connector(home, {"email_vendor": ["textonly", "file"]})
    result = conn.email().send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x", html="<p>x</p>"))
    assert result.vendor == "file"
    skip, sent = log_rows(conn)
    assert (skip["service_name"], skip["method"], skip["error_code"]) == ("textonly", "SKIP", "unsupported_feature")
    assert "lacks html" in skip["error_message"] and skip["correlation_id"] == sent["correlation_id"] == result.correlation_id


def test_sms_timeout_is_not_failed_over_but_a_503_is(home: Path) -> None:
    conn = connector(home, {"sms_vendor": ["fake", "file"], "vendors": {"fake": {"fail_kind": "timeout", "fail_first": 1000}}})
    for key in (None, "key-1"):  # no SMS vendor deduplicates: a key changes nothing
        result = conn.sms().send(SmsMessage(to="+14155552671", body="x", idempotency_key=key))
        assert result.vendor == "fake" and result.recipients[0].status is DeliveryStatus.UNCERTAIN
    assert outbox(home) == [] and [r["attempt_number"] for r in log_rows(conn)] == [1, 1]
    conn2 = connector(home / "b", {"sms_vendor": ["fake", "file"], "vendors": {"fake": {"fail_kind": "503", "fail_first": 1}}})
    assert conn2.sms().send(SmsMessage(to="+14155552671", body="x")).vendor == "file"


def test_http_twilio_503s_fail_over_to_vonage_under_one_correlation_id(home: Path) -> None:
    with FakeTwilio() as twilio, FakeVonage() as vonage:
        cfg = {"sms_vendor": ["twilio", "vonage"], "vendors": {
            "twilio": {"base_url": twilio.url, "from_number": "+14155552000"},
            "vonage": {"base_url": vonage.url, "from_number": "Acme"}}}
        conn = connector(home, cfg, {"twilio": {"username": TWILIO_SID, "password": TWILIO_TOKEN},
                                      "vonage": {"username": VONAGE_KEY, "password": VONAGE_SECRET}})
        twilio.then(("503",), ("503",), ("503",))
        result = conn.sms().send(SmsMessage(to="+14155552671", body="x", idempotency_key="order-1"))
        assert result.vendor == "vonage" and len(twilio.requests) == 3 and len(vonage.requests) == 1
        assert vonage.requests[0].form["client-ref"] == result.correlation_id
        rows = log_rows(conn)
        assert [(r["service_name"], r["http_status_code"]) for r in rows] == [("twilio", 503)] * 3 + [("vonage", 200)]
        assert {r["correlation_id"] for r in rows} == {result.correlation_id}
        twilio.then(("400", 21606))
        with pytest.raises(ValidationError):
            conn.sms().send(SmsMessage(to="+14155552671", body="x"))
        assert len(vonage.requests) == 1
        conn.close()


def test_when_every_vendor_fails_the_last_error_names_the_hops(home: Path) -> None:
    conn = connector(home, {"email_vendor": ["fake", "console"], "vendors": {"fake": {"fail_kind": "503", "fail_first": 1000}}})
    conn.pipeline.breaker.trip("console", reason="test")
    with pytest.raises(Exception) as info:
        conn.email().send(MAIL)
    assert info.value.code == "circuit_open" and "fake: vendor_unavailable" in info.value.hint  # type: ignore[attr-defined]
    assert not isinstance(info.value, VendorUnavailableError)
