"""Verified Stripe events (through the webhook receiver) and PayPal events update payment records,
idempotently and never backwards."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl import Connector
from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentStatus
from connectorctl.payments.events import apply_event
from connectorctl.payments.records import PaymentRecords
from connectorctl.webhooks.receiver import WebhookReceiver
from tests.fake_stripe import FakeStripe
from tests.payment_support import payment_config, payment_env

SECRET = "whsec_test_payments_events"


@pytest.fixture
def connector(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Connector, FakeStripe]]:
    for name, value in {**payment_env(), "TEST_STRIPE_WHSEC": SECRET}.items():
        monkeypatch.setenv(name, value)
    with FakeStripe() as fake:
        payment_config(home, stripe_url=fake.url, extra="webhooks:\n  stripe:\n    scheme: stripe\n    secret_env: [TEST_STRIPE_WHSEC]\n")
        with Connector() as c:
            yield c, fake


def deliver(connector: Connector, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A delivery signed as Stripe signs: hex HMAC-SHA256 of "{t}.{body}" with the whsec_ secret."""
    import hashlib
    import hmac

    body = json.dumps(event).encode()
    timestamp = int(time.time())
    signature = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = [("Stripe-Signature", f"t={timestamp},v1={signature}"), ("Content-Type", "application/json")]
    return WebhookReceiver(connector).handle("stripe", body, headers, "http://127.0.0.1/api/connector/webhooks/stripe")


def event(n: int, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"evt_{n}", "object": "event", "type": kind, "data": {"object": obj}}


def test_stripe_events_move_a_payment_forward_only(connector: tuple[Connector, FakeStripe]) -> None:
    conn, stripe = connector
    service = conn.payments()
    auth = service.charge(Money(5000, "EUR"), reference="ev:1", capture=False, payment_method="pm_card_visa")
    pi = dict(stripe.intents[auth.payment_id])
    succeeded = {**pi, "status": "succeeded", "amount_received": 5000, "amount_capturable": 0}
    charge = {"id": pi["latest_charge"], "object": "charge", "payment_intent": pi["id"], "amount": 5000, "amount_captured": 5000,
              "amount_refunded": 2000, "captured": True}
    assert deliver(conn, event(1, "payment_intent.succeeded", succeeded))[0] == 200
    assert service.records.get(auth.payment_id).status is PaymentStatus.CAPTURED  # type: ignore[union-attr]
    assert deliver(conn, event(2, "charge.refunded", charge))[0] == 200
    after = service.records.get(auth.payment_id)
    assert after.status is PaymentStatus.PARTIALLY_REFUNDED and after.amount_refunded == 2000  # type: ignore[union-attr]
    # Out of order: an older "authorized" event and a replayed success change nothing; a duplicate is acknowledged only.
    assert deliver(conn, event(3, "payment_intent.amount_capturable_updated", {**pi, "status": "requires_capture"}))[0] == 200
    assert deliver(conn, event(4, "payment_intent.succeeded", succeeded))[0] == 200
    status, body = deliver(conn, event(2, "charge.refunded", charge))
    assert status == 200 and body["status"] == "duplicate"
    final = service.records.get(auth.payment_id)
    assert final.status is PaymentStatus.PARTIALLY_REFUNDED and final.amount_refunded == 2000  # type: ignore[union-attr]
    # A forged event is refused and changes nothing.
    forged = WebhookReceiver(conn).handle("stripe", json.dumps(event(5, "charge.refunded", {**charge, "amount_refunded": 5000})).encode(),
                                          [("Stripe-Signature", f"t={int(time.time())},v1=00")], "http://127.0.0.1/x")
    assert forged[0] == 401 and service.records.get(auth.payment_id).amount_refunded == 2000  # type: ignore[union-attr]


def test_events_for_unknown_payments_are_kept_but_change_nothing(connector: tuple[Connector, FakeStripe]) -> None:
    conn, _ = connector
    status, _ = deliver(conn, event(9, "payment_intent.succeeded", {"id": "pi_unknown", "object": "payment_intent", "amount": 1,
                                                                     "currency": "usd", "status": "succeeded"}))
    assert status == 200 and PaymentRecords(conn.db).get("pi_unknown") is None


def test_paypal_events(connector: tuple[Connector, FakeStripe]) -> None:
    conn, _ = connector
    records = PaymentRecords(conn.db)
    records.record(Payment("paypal", "5O1", PaymentStatus.AUTHORIZED, Money(3000, "USD"), reference="pp:1", authorization_id="0A1"))
    captured = {"event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "3C1", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "30.00"},
                                                                         "supplementary_data": {"related_ids": {"order_id": "5O1"}}}}
    refunded = {"event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": {
        "id": "1R1", "amount": {"currency_code": "USD", "value": "10.00"},
        "seller_payable_breakdown": {"total_refunded_amount": {"currency_code": "USD", "value": "10.00"}},
        "links": [{"rel": "up", "href": "https://api-m.paypal.com/v2/payments/captures/3C1"}]}}
    assert apply_event(conn, "paypal", captured).status is PaymentStatus.CAPTURED  # type: ignore[union-attr]
    after = apply_event(conn, "paypal", refunded)
    assert after is not None and after.status is PaymentStatus.PARTIALLY_REFUNDED and after.amount_refunded == 1000
    assert apply_event(conn, "paypal", captured).status is PaymentStatus.PARTIALLY_REFUNDED  # type: ignore[union-attr]
    assert apply_event(conn, "paypal", {"event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "x"}}) is None
