"""VonageSmsAdapter against a local fake of rest.nexmo.com (errors inside HTTP 200 bodies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from sms_contract import SmsContract
from fake_sms_vendors import VONAGE_KEY, VONAGE_SECRET, FakeVonage
from test_sms_twilio import log_rows, make_connector

from connectorctl.domain.messages import DeliveryStatus, SmsMessage
from connectorctl.errors import (
    AuthenticationError, RateLimitedError, ValidationError, VendorRejectedError, VendorTimeoutError, VendorUnavailableError,
)
from connectorctl.gateway import Connector

TO = "+447911123456"


@pytest.fixture
def vonage(home: Path) -> Iterator[tuple[Connector, FakeVonage]]:
    with FakeVonage() as fake:
        conn = make_connector(home, "vonage", fake.url, {"username": VONAGE_KEY, "password": VONAGE_SECRET}, from_number="AcmeShop")
        yield conn, fake
        conn.close()


def test_send_posts_the_documented_form_and_reads_the_part_status(vonage: tuple[Connector, FakeVonage]) -> None:
    conn, fake = vonage
    result = conn.sms().send(SmsMessage(to="+44 7911 123456", body="Parcel arriving today"))
    assert result.ok and result.vendor == "vonage" and result.message_id.startswith("0A")
    (req,) = fake.requests
    assert req.method == "POST" and req.path == "/sms/json"
    assert req.form == {"api_key": VONAGE_KEY, "api_secret": VONAGE_SECRET, "from": "AcmeShop", "to": "447911123456",
                        "text": "Parcel arriving today", "client-ref": result.correlation_id}
    rows = log_rows(conn)
    assert rows[0]["status"] == "success"
    assert all(VONAGE_SECRET not in str(v) and VONAGE_KEY not in str(v) for r in rows for v in r.values())


def test_non_gsm_text_is_sent_as_unicode_and_every_part_must_succeed(vonage: tuple[Connector, FakeVonage]) -> None:
    conn, fake = vonage
    result = conn.sms().send(SmsMessage(to=TO, body="こんにちは世界 " * 12))
    assert result.ok and fake.requests[0].form["type"] == "unicode" and len(result.raw["messages"]) == 2


@pytest.mark.parametrize(
    ("status", "text", "error"),
    [("4", "Bad Credentials", AuthenticationError), ("2", "Missing from param", ValidationError),
     ("9", "Partner quota exceeded", VendorRejectedError)],
)
def test_a_non_zero_status_in_a_200_body_is_a_failure(vonage: tuple[Connector, FakeVonage], status: str, text: str, error: type) -> None:
    conn, fake = vonage
    fake.then(("status", status, text))
    with pytest.raises(error, match=f"status {status}: {text}"):
        conn.sms().send(SmsMessage(to=TO, body="x"))
    assert len(fake.requests) == 1
    assert log_rows(conn)[-1]["status"] == "failed"


def test_barred_number_is_a_rejected_recipient_not_an_exception(vonage: tuple[Connector, FakeVonage]) -> None:
    conn, fake = vonage
    fake.then(("status", "7", "Number barred"))
    result = conn.sms().send(SmsMessage(to=TO, body="x"))
    assert not result.ok and result.recipients[0].status is DeliveryStatus.REJECTED and "Number barred" in result.recipients[0].reason


def test_throttled_status_1_is_rate_limited_and_retried(vonage: tuple[Connector, FakeVonage]) -> None:
    conn, fake = vonage
    fake.then(("status", "1", "Throughput Rate Exceeded"))
    assert conn.sms().send(SmsMessage(to=TO, body="x")).ok and len(fake.requests) == 2
    fake.then(("429", 4), ("429", 4), ("429", 4))
    with pytest.raises(RateLimitedError) as info:
        conn.sms().send(SmsMessage(to=TO, body="x"))
    assert info.value.retry_after_seconds == 4


def test_http_level_errors_map_like_every_vendor(vonage: tuple[Connector, FakeVonage]) -> None:
    conn, fake = vonage
    fake.then(("401",), ("400",))
    for error in (AuthenticationError, ValidationError):
        with pytest.raises(error):
            conn.sms().send(SmsMessage(to=TO, body="x"))
    assert len(fake.requests) == 2


@pytest.mark.parametrize("answer", [("500",), ("hang",), ("status", "5", "Internal Error")])
def test_a_failure_after_which_the_sms_may_have_gone_out_is_uncertain_and_not_retried(
        vonage: tuple[Connector, FakeVonage], answer: tuple[str, ...]) -> None:
    conn, fake = vonage
    fake.then(answer, answer)
    result = conn.sms().send(SmsMessage(to=TO, body="x", idempotency_key="order-9"))
    assert not result.ok and result.recipients[0].status is DeliveryStatus.UNCERTAIN
    assert len(fake.requests) == 1  # Vonage has no idempotency key: a retry could deliver it twice


def test_balance_and_credentials_check_use_basic_auth_reads(vonage: tuple[Connector, FakeVonage], home: Path) -> None:
    conn, fake = vonage
    assert conn.sms().check_balance() == {"vendor": "vonage", "balance": "10.28", "currency": "EUR", "auto_reload": False}
    assert conn.adapter("vonage", "sms").verify_credentials().http_status == 200
    assert {(r.method, r.path) for r in fake.requests} == {("GET", "/account/get-balance")}
    bad = make_connector(home / "other", "vonage", fake.url, {"username": VONAGE_KEY, "password": "nope-nope"})
    with pytest.raises(AuthenticationError):
        bad.adapter("vonage", "sms").verify_credentials()
    bad.close()


def test_preview_masks_key_and_secret_in_the_form(vonage: tuple[Connector, FakeVonage]) -> None:
    conn, fake = vonage
    shown = conn.adapter("vonage", "sms").preview(SmsMessage(to=TO, body="hi"))
    assert shown["body"]["api_secret"] == "***" and shown["body"]["to"] == "447911123456"
    assert VONAGE_SECRET not in repr(shown) and fake.requests == []


class TestVonageContract(SmsContract):
    slug = "vonage"
    secret = VONAGE_SECRET
    answers = {"auth": ("status", 4, "Bad Credentials"), "invalid": ("status", 3, "Invalid from param"),
               "refused_recipient": ("status", 6, "Unroutable message - rejected"), "unavailable": ("503",),
               "server_error": ("502",), "hang": ("hang",)}

    def make_fake(self) -> FakeVonage:
        return FakeVonage()

    def vendor_config(self, fake: FakeVonage) -> dict[str, Any]:
        return {"from_number": "AcmeShop"}

    def credentials(self) -> dict[str, str]:
        return {"username": VONAGE_KEY, "password": VONAGE_SECRET}

    def observed(self, fake: FakeVonage) -> dict[str, Any]:
        form = [r for r in fake.requests if r.path == "/sms/json"][-1].form
        return {"to": "+" + form["to"], "from": form["from"], "body": form["text"]}

    def sends_seen(self, fake: FakeVonage) -> int:
        return sum(r.path == "/sms/json" for r in fake.requests)

    def fail_next(self, fake: FakeVonage, kind: str, **options: Any) -> None:
        fake.then(("429", options["retry_after"]) if kind == "rate_limited" else self.answers[kind])
