"""Each vendor's documented delivery reports become the same normalized events."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectorctl.delivery.events import BounceType, EventType
from connectorctl.delivery.store import message_key
from connectorctl.delivery.vendors import BY_SCHEME, parse_events
from connectorctl.webhooks import WebhookRequest, get_verifier
from tests.delivery.vendor_payloads import BUILDERS

TS = 1_800_000_000.0
SCHEME = {"sendgrid": "sendgrid", "mailgun": "mailgun", "postmark": "postmark", "mailchimp": "mandrill", "twilio": "twilio", "vonage": "vonage"}
# what our send got back for the message (the id a report must lead back to) and its recipient
SENT = {"sendgrid": ("W6A8J0GQQ0qRP5jVm8MQpw", "Ann@Example.com"), "mailgun": ("<20261126.1@mg.example.com>", "ann@example.com"),
        "postmark": ("b7bc2f4a-e38e-4336-af7d-e6c392c2f817", "ann@example.com"), "mailchimp": ("md000001", "ann@example.com"),
        "twilio": ("SM" + "1" * 32, "+14155552671"), "vonage": ("0A0000001", "+447700900000")}
EXPECTED = {
    "sendgrid": {"delivered": "delivered", "earlier": "deferred", "hard_bounce": "bounced (hard)", "complaint": "complained", "unknown": "unknown"},
    "mailgun": {"delivered": "delivered", "earlier": "bounced (soft)", "hard_bounce": "bounced (hard)", "complaint": "complained", "unknown": "unknown"},
    "postmark": {"delivered": "delivered", "earlier": "bounced (soft)", "hard_bounce": "bounced (hard)", "complaint": "complained", "unknown": "unknown"},
    "mailchimp": {"delivered": "opened", "earlier": "deferred", "hard_bounce": "bounced (hard)", "complaint": "complained", "unknown": "unknown"},
    "twilio": {"delivered": "delivered", "earlier": "sent", "hard_bounce": "undelivered", "complaint": "failed", "unknown": "unknown"},
    "vonage": {"delivered": "delivered", "earlier": "sent", "hard_bounce": "failed", "complaint": "rejected", "unknown": "unknown"},
}
CASES = [(vendor, kind) for vendor, kinds in EXPECTED.items() for kind in kinds]


@pytest.mark.parametrize(("vendor", "kind"), CASES, ids=[f"{v}-{k}" for v, k in CASES])
def test_documented_payload_becomes_one_normalized_event(vendor: str, kind: str) -> None:
    mid, rcpt = SENT[vendor]
    body = BUILDERS[vendor](kind, mid, rcpt.lower(), TS, 1)
    events = parse_events(SCHEME[vendor], body, received_at=TS + 99)
    assert events is not None and len(events) == 1
    event = events[0]
    assert (event.vendor, event.label) == (vendor, EXPECTED[vendor][kind])
    assert event.vendor_event and event.raw  # the vendor's own name and record are kept
    if event.type is EventType.UNKNOWN and vendor == "mailchimp":
        return  # a sync event (deny-list change) names no message
    assert message_key(event.vendor_message_id) == message_key(mid)
    assert event.recipient == rcpt.lower()
    # vendors that stamp their reports are placed at that time; Twilio's arrival time stands in
    assert event.occurred_at == pytest.approx(TS + 99 if vendor == "twilio" else TS, abs=1)
    if kind == "hard_bounce" and vendor not in ("twilio", "vonage"):
        assert event.suppresses and event.reason
    if kind == "complaint" and vendor not in ("twilio", "vonage"):
        assert event.suppresses


def test_duplicate_reports_get_the_same_key_and_different_reports_different_keys() -> None:
    for vendor in EXPECTED:
        mid, rcpt = SENT[vendor]
        keys = {kind: parse_events(SCHEME[vendor], BUILDERS[vendor](kind, mid, rcpt.lower(), TS, 1), TS)[0].event_key for kind in EXPECTED[vendor]}
        again = parse_events(SCHEME[vendor], BUILDERS[vendor]("delivered", mid, rcpt.lower(), TS, 1), TS + 60)[0].event_key
        assert again == keys["delivered"], vendor
        assert len(set(keys.values())) == len(keys), vendor


def test_sendgrid_blocked_is_a_soft_bounce_and_a_batch_gives_one_event_each() -> None:
    batch = json.loads(BUILDERS["sendgrid"]("hard_bounce", "abc", "a@example.com", TS, 1)) + json.loads(BUILDERS["sendgrid"]("delivered", "abc", "b@example.com", TS, 2))
    batch[0]["type"] = "blocked"
    events = parse_events("sendgrid", json.dumps(batch).encode(), TS)
    assert [(e.type, e.bounce_type, e.recipient) for e in events] == [(EventType.BOUNCED, BounceType.SOFT, "a@example.com"),
                                                                        (EventType.DELIVERED, None, "b@example.com")]
    assert not events[0].suppresses


def test_mailgun_failure_on_its_own_suppression_list_is_a_rejection() -> None:
    data = json.loads(BUILDERS["mailgun"]("hard_bounce", "<x@mg>", "a@example.com", TS, 1))
    data["event-data"]["reason"] = "suppress-bounce"
    (event,) = parse_events("mailgun", json.dumps(data).encode(), TS)
    assert event.type is EventType.REJECTED and not event.suppresses


def test_postmark_subscription_change_that_suppresses_is_kept_as_what_it_is() -> None:
    data = json.loads(BUILDERS["postmark"]("unknown", "pm-1", "a@example.com", TS, 1))
    data.update(SuppressSending=True, SuppressionReason="ManualSuppression")
    (event,) = parse_events("postmark", json.dumps(data).encode(), TS)
    assert event.type is EventType.UNSUBSCRIBED and event.suppresses


def test_payloads_that_are_not_delivery_reports_give_no_events() -> None:
    inbound = b"MessageSid=SM1&SmsStatus=received&From=%2B14155550100&To=%2B14155552000&Body=STOP"
    assert parse_events("twilio", inbound, TS) == []
    assert parse_events("stripe", b"{}", TS) is None  # not a delivery vendor
    assert parse_events("sendgrid", b"not json", TS) is None  # verified, yet not understood: kept unprocessed
    assert set(BY_SCHEME) == {"sendgrid", "mailgun", "postmark", "mandrill", "twilio", "vonage"}


def test_vonage_signature_matches_vonages_published_vector() -> None:
    # Vonage's SDK test vector: params a=1, b=2, timestamp=1461605396 signed with "secret" (md5hash)
    body = b"a=1&b=2&timestamp=1461605396&sig=6af838ef94998832dbfc29020b564830"
    verifier = get_verifier("vonage")
    assert verifier.verify(WebhookRequest(body), ["secret"], now=1461605396).ok
    assert verifier.verify(WebhookRequest(body.replace(b"b=2", b"b=3")), ["secret"], now=1461605396).reason == "bad_signature"
    assert verifier.verify(WebhookRequest(body), ["secret"], now=1461605396 + 3600).reason == "stale"
    assert verifier.verify(WebhookRequest(b"a=1&timestamp=1461605396"), ["secret"], now=1461605396).reason == "missing_header"


@pytest.mark.parametrize("algorithm", ["md5hash", "sha256", "sha512"])
def test_vonage_signs_and_verifies_form_and_json_bodies(algorithm: str) -> None:
    verifier = get_verifier("vonage", algorithm=algorithm)
    for body in (BUILDERS["vonage"]("delivered", "0A1", "+447700900000", TS, 1), json.dumps({"messageId": "0A1", "status": "delivered"}).encode()):
        signed = verifier.sign(body, "sig-secret", now=TS)
        verdict = verifier.verify(signed.request(), ["sig-secret"], now=TS)
        assert verdict.ok and verdict.event_type == "delivered"
        assert not verifier.verify(signed.request(), ["other-secret"], now=TS).ok


def test_vonage_through_webhook_sign_and_verify(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VONAGE_SIG", "sig-secret")
    receipt, signed = tmp_path / "dlr.txt", tmp_path / "signed.txt"
    receipt.write_bytes(BUILDERS["vonage"]("delivered", "0A1", "+447700900000", TS, 1))
    assert cli("webhook", "sign", "--scheme", "vonage", "--secret-env", "VONAGE_SIG", "--body-file", str(receipt), "--body-out", str(signed)).exit_code == 0
    assert b"sig=" in signed.read_bytes()
    verified = cli("webhook", "verify", "--scheme", "vonage", "--secret-env", "VONAGE_SIG", "--body-file", str(signed), "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["event_type"] == "delivered"
    tampered = tmp_path / "tampered.txt"
    tampered.write_bytes(signed.read_bytes().replace(b"status=delivered", b"status=failed"))
    assert cli("webhook", "verify", "--scheme", "vonage", "--secret-env", "VONAGE_SIG", "--body-file", str(tampered)).exit_code == 1
