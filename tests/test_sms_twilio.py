"""TwilioSmsAdapter against a local fake that checks requests as twilio-oai documents them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from sms_contract import SmsContract
from fake_sms_vendors import TWILIO_SID, TWILIO_TOKEN, FakeTwilio

from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import DeliveryStatus, SmsMessage
from connectorctl.errors import (
    AuthenticationError, InvalidInputError, RateLimitedError, ValidationError, VendorTimeoutError, VendorUnavailableError,
)
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

TO = "+14155552671"


def make_connector(home: Path, slug: str, url: str, creds: dict[str, str], **vendor: Any) -> Connector:
    home.mkdir(parents=True, exist_ok=True)
    cfg = {"sms_vendor": slug, "vendors": {slug: {"base_url": url, "timeout_seconds": 0.5, "connect_timeout_seconds": 0.5, **vendor}}}
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Connector(config_path=path, clock=FakeClock(), credentials=StaticCredentialProvider({slug: creds}))


@pytest.fixture
def twilio(home: Path) -> Iterator[tuple[Connector, FakeTwilio]]:
    with FakeTwilio() as fake:
        conn = make_connector(home, "twilio", fake.url, {"username": TWILIO_SID, "password": TWILIO_TOKEN},
                              from_number="+1 415 555 2000", lookup_base_url=fake.url)
        yield conn, fake
        conn.close()


def log_rows(conn: Connector) -> list[dict[str, Any]]:
    flush = getattr(conn, "flush", None)  # a batching log writer commits on flush
    if flush is not None:
        flush()
    conn.db.conn.row_factory = None
    cur = conn.db.conn.execute("SELECT * FROM integration_logs ORDER BY seq")
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def test_send_posts_form_with_basic_auth_and_returns_the_message_sid(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    result = conn.sms().send(SmsMessage(to="+1 (415) 555-2671", body="Your code is 1234"))
    assert result.ok and result.vendor == "twilio" and result.message_id.startswith("SM")
    assert result.recipients[0].recipient == TO and result.recipients[0].status is DeliveryStatus.QUEUED
    (req,) = fake.requests
    assert req.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    assert req.form == {"To": TO, "From": "+14155552000", "Body": "Your code is 1234"}
    rows = log_rows(conn)
    assert [r["status"] for r in rows] == ["success"] and rows[0]["http_status_code"] == 201
    assert rows[0]["correlation_id"] == result.correlation_id
    assert all(TWILIO_TOKEN not in str(v) for r in rows for v in r.values())


def test_messaging_service_sid_replaces_from_when_configured(home: Path) -> None:
    with FakeTwilio() as fake:
        conn = make_connector(home, "twilio", fake.url, {"username": TWILIO_SID, "password": TWILIO_TOKEN}, messaging_service_sid="MG123")
        assert conn.sms().send(SmsMessage(to=TO, body="hi")).ok
        assert fake.requests[0].form == {"To": TO, "MessagingServiceSid": "MG123", "Body": "hi"}
        conn.close()


def test_invalid_number_is_refused_before_any_call(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    with pytest.raises(InvalidInputError, match="invalid phone number"):
        conn.sms().send(SmsMessage(to="+1 555", body="x"))
    assert fake.requests == []


def test_401_is_an_auth_failure_never_retried(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    fake.then(("401",))
    with pytest.raises(AuthenticationError, match="20003"):
        conn.sms().send(SmsMessage(to=TO, body="x"))
    assert len(fake.requests) == 1


def test_400_is_a_validation_error_and_21211_an_invalid_recipient(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    fake.then(("400", 21606))
    with pytest.raises(ValidationError, match="21606"):
        conn.sms().send(SmsMessage(to=TO, body="x"))
    fake.then(("400", 21211))
    result = conn.sms().send(SmsMessage(to=TO, body="x"))
    assert not result.ok and result.recipients[0].status is DeliveryStatus.INVALID and "21211" in result.recipients[0].reason
    assert len(fake.requests) == 2


def test_20429_is_retried_after_retry_after_even_for_sms(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    fake.then(("429", 3))
    result = conn.sms().send(SmsMessage(to=TO, body="x"))
    assert result.ok and len(fake.requests) == 2
    assert max(conn.clock.sleeps) >= 3  # type: ignore[attr-defined]


def test_429_that_persists_surfaces_rate_limited_with_retry_after(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    fake.then(("429", 2), ("429", 2), ("429", 2))
    with pytest.raises(RateLimitedError) as info:
        conn.sms().send(SmsMessage(to=TO, body="x"))
    assert info.value.retry_after_seconds == 2 and len(fake.requests) == 3


def test_a_timeout_is_reported_uncertain_and_not_retried(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    fake.then(("hang",))
    result = conn.sms().send(SmsMessage(to=TO, body="x", idempotency_key="k-1"))
    assert result.recipients[0].status is DeliveryStatus.UNCERTAIN and result.correlation_id
    assert len(fake.requests) == 1
    assert [r["status"] for r in log_rows(conn)] == ["timeout"]


def test_a_503_proves_twilio_did_not_send_it_so_it_is_retried(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    fake.then(("503",))
    assert conn.sms().send(SmsMessage(to=TO, body="x")).ok
    assert len(fake.requests) == 2


def test_an_unknown_message_status_is_reported_as_what_it_is(twilio: tuple[Connector, FakeTwilio], monkeypatch: pytest.MonkeyPatch) -> None:
    conn, fake = twilio
    route = fake.route
    monkeypatch.setattr(fake, "route", lambda rec: (lambda s, p, h: (s, {**p, "status": "teleported"}, h))(*route(rec)))
    result = conn.sms().send(SmsMessage(to=TO, body="x"))
    (recipient,) = result.recipients
    assert not result.ok and recipient.status is DeliveryStatus.UNCERTAIN and "'teleported'" in (recipient.reason or "")
    assert recipient.message_id == result.message_id and result.message_id.startswith("SM")


def test_lookup_v2_invalid_number_is_a_200_with_valid_false(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    ok = conn.sms().validate_phone_number("+1 415 555 2671")
    assert ok["valid"] is True and ok["source"] == "twilio_lookup_v2"
    FakeTwilio.invalid_lookup = {TO}
    try:
        bad = conn.sms().validate_phone_number(TO)
    finally:
        FakeTwilio.invalid_lookup = {"+15005550001"}
    assert bad["valid"] is False and bad["errors"] == ["TOO_LONG"]
    assert fake.requests[-1].path == f"/v2/PhoneNumbers/{TO}" and fake.requests[-1].method == "GET"
    offline = conn.sms().validate_phone_number("12")
    assert offline["valid"] is False and offline["source"] == "offline" and len(fake.requests) == 2


def test_balance_stays_a_string_and_credentials_check_is_a_read(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    assert conn.sms().check_balance() == {"vendor": "twilio", "balance": "0.05", "currency": "USD", "account_sid": TWILIO_SID}
    assert conn.adapter("twilio", "sms").verify_credentials().value["account_sid"] == TWILIO_SID
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", f"/2010-04-01/Accounts/{TWILIO_SID}/Balance.json"), ("GET", f"/2010-04-01/Accounts/{TWILIO_SID}.json")]


def test_wrong_token_fails_the_credentials_check(home: Path) -> None:
    with FakeTwilio() as fake:
        conn = make_connector(home, "twilio", fake.url, {"username": TWILIO_SID, "password": "wrong-token-0000"})
        with pytest.raises(AuthenticationError) as info:
            conn.adapter("twilio", "sms").verify_credentials()
        assert "wrong-token-0000" not in str(info.value)
        conn.close()


def test_preview_builds_the_request_without_sending_and_masks_secrets(twilio: tuple[Connector, FakeTwilio]) -> None:
    conn, fake = twilio
    shown = conn.adapter("twilio", "sms").preview(SmsMessage(to=TO, body="hello"))
    assert shown["method"] == "POST" and shown["url"].endswith("/Accounts/***/Messages.json")
    assert shown["headers"]["authorization"] == "***" and shown["body"] == {"To": TO, "From": "+14155552000", "Body": "hello"}
    assert TWILIO_TOKEN not in repr(shown) and fake.requests == []


class TestTwilioContract(SmsContract):
    slug = "twilio"
    secret = TWILIO_TOKEN
    answers = {"auth": ("401",), "invalid": ("400", 21606), "refused_recipient": ("400", 21211), "unavailable": ("503",),
               "server_error": ("502",), "hang": ("hang",)}

    def make_fake(self) -> FakeTwilio:
        return FakeTwilio()

    def vendor_config(self, fake: FakeTwilio) -> dict[str, Any]:
        return {"from_number": "+1 415 555 2000", "lookup_base_url": fake.url}

    def credentials(self) -> dict[str, str]:
        return {"username": TWILIO_SID, "password": TWILIO_TOKEN}

    def observed(self, fake: FakeTwilio) -> dict[str, Any]:
        form = [r for r in fake.requests if r.method == "POST"][-1].form
        return {"to": form["To"], "from": form.get("From"), "body": form["Body"]}

    def sends_seen(self, fake: FakeTwilio) -> int:
        return sum(r.method == "POST" and r.path.endswith("/Messages.json") for r in fake.requests)

    def fail_next(self, fake: FakeTwilio, kind: str, **options: Any) -> None:
        fake.then(("429", options["retry_after"]) if kind == "rate_limited" else self.answers[kind])
