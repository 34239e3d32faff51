"""Stripe through the payment service against the local fake: the payment contract plus Stripe's specifics
(form encoding, Stripe-Version, asking before re-sending, refusals, timeouts, idempotency errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qsl

import pytest

from connectorctl import Connector
from connectorctl.domain.money import Money
from connectorctl.domain.payments import PaymentStatus
from connectorctl.errors import InvalidInputError, OutcomeUncertainError, PaymentDeclinedError, ValidationError
from connectorctl.store.intents import IntentState, ReferenceConflictError
from tests.fake_payment_server import Seen
from tests.fake_stripe import FakeStripe
from tests.payment_contract import PaymentContract
from tests.payment_support import payment_connector, payment_env


class TestStripeContract(PaymentContract):
    slug = "stripe"
    good_method = "pm_card_visa"
    declined_method = "pm_card_chargeDeclinedInsufficientFunds"
    decline_code = "insufficient_funds"

    def make_fake(self) -> FakeStripe:
        return FakeStripe()

    def creates(self, fake: FakeStripe) -> list[Seen]:  # type: ignore[override]
        return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/payment_intents"]

    def key_of(self, request: Seen) -> str | None:
        return request.header("Idempotency-Key")

    def held(self, fake: FakeStripe) -> dict[str, int]:  # type: ignore[override]
        return fake.charges_by_reference()


@pytest.fixture
def stripe() -> Iterator[FakeStripe]:
    with FakeStripe() as fake:
        yield fake


@pytest.fixture
def connector(home: Path, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connector]:
    with payment_connector(home, monkeypatch, stripe_url=stripe.url) as c:
        yield c


def posts(fake: FakeStripe, path: str) -> list[dict[str, str]]:
    return [dict(parse_qsl(r.body.decode())) for r in fake.requests if r.method == "POST" and r.path == path]


def test_charge_sends_stripe_form_with_pinned_version_and_derived_key(connector: Connector, stripe: FakeStripe) -> None:
    payment = connector.payments().charge(Money.parse("19.99 EUR"), reference="order:1:charge", payment_method="pm_card_visa",
                                          metadata={"order_id": "1"})
    assert payment.status is PaymentStatus.CAPTURED and payment.amount_captured == 1999 and payment.payment_id.startswith("pi_")
    [request] = [r for r in stripe.requests if r.method == "POST"]
    assert request.header("Stripe-Version") == "2024-06-20"
    assert request.header("Authorization", ) == f"Bearer {payment_env()['TEST_STRIPE_KEY']}"
    form = dict(parse_qsl(request.body.decode()))
    assert form == {"amount": "1999", "currency": "eur", "capture_method": "automatic", "payment_method_types[0]": "card",
                    "metadata[order_id]": "1", "metadata[connectorctl_reference]": "order:1:charge",
                    "payment_method": "pm_card_visa", "confirm": "true"}
    intent = connector.payments().intents.get("payment", "order:1:charge")
    assert intent is not None and intent.state is IntentState.SUCCEEDED
    assert request.header("Idempotency-Key") == intent.idempotency_key


def test_repeating_an_uncertain_charge_asks_stripe_first(connector: Connector, stripe: FakeStripe) -> None:
    for _ in range(3):
        stripe.fail_next("drop_after",)
    service = connector.payments()
    with pytest.raises(OutcomeUncertainError):
        service.charge(Money(900, "USD"), reference="r4", payment_method="pm_card_visa")
    payment = service.charge(Money(900, "USD"), reference="r4", payment_method="pm_card_visa")
    assert payment.status is PaymentStatus.CAPTURED
    assert stripe.charges_by_reference() == {"r4": 1}


def test_never_received_then_reconciled_as_failed_and_sent_on_the_next_run(connector: Connector, stripe: FakeStripe) -> None:
    for _ in range(3):
        stripe.fail_next("drop_before",)
    service = connector.payments()
    with pytest.raises(OutcomeUncertainError):
        service.charge(Money(1000, "USD"), reference="r5", payment_method="pm_card_visa")
    [done] = service.reconcile()
    assert done.after == "failed" and done.note == "never received by the vendor"
    payment = service.charge(Money(1000, "USD"), reference="r5", payment_method="pm_card_visa")
    assert payment.status is PaymentStatus.CAPTURED and stripe.charges_by_reference() == {"r5": 1}


def test_zero_and_three_decimal_currencies_in_stripe_units(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    service.charge(Money.parse("1000 JPY"), reference="jpy", payment_method="pm_card_visa")
    service.charge(Money.parse("1.500 KWD"), reference="kwd", payment_method="pm_card_visa")
    service.charge(Money.parse("500 ISK"), reference="isk", payment_method="pm_card_visa")
    amounts = [(f["amount"], f["currency"]) for f in posts(stripe, "/v1/payment_intents")]
    assert amounts == [("1000", "jpy"), ("1500", "kwd"), ("50000", "isk")]


def test_stripe_refusals_do_not_leave_uncertain_intents(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    with pytest.raises(ValidationError):
        service.charge(Money(100, "USD"), reference="bad-pm", payment_method="card_123")
    assert service.unresolved() == []
    with pytest.raises(InvalidInputError, match="card number"):
        service.charge(Money(100, "USD"), reference="pan", description="paid with 4242 4242 4242 4242")
    assert not any(r.method == "POST" and b"4242" in r.body for r in stripe.requests)


def test_payment_attempts_are_committed_before_the_call_returns(connector: Connector, stripe: FakeStripe, home: Path) -> None:
    import sqlite3

    connector.payments().charge(Money(100, "USD"), reference="logged", payment_method="pm_card_visa")
    rows = sqlite3.connect(connector.settings.database).execute(
        "SELECT operation, status FROM integration_logs WHERE service_name = 'stripe'").fetchall()
    assert ("payment_create", "success") in rows


def test_a_refused_refund_does_not_block_the_next_one_and_a_repeat_is_not_a_second_refund(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    paid = service.charge(Money(1000, "USD"), reference="rf", payment_method="pm_card_visa")
    first = service.refund(paid.payment_id, 400)
    with pytest.raises(ValidationError):  # more than is left: Stripe refuses, nothing happened
        service.refund(paid.payment_id, 700)
    for _ in range(3):
        stripe.fail_next("drop_after",)
    with pytest.raises(OutcomeUncertainError):
        service.refund(paid.payment_id, 300)
    again = service.refund(paid.payment_id, 300)  # the same refund asked again: finished, not repeated
    assert again.amount_refunded == 700 and first.refund_id != again.refund_id
    assert [f.get("amount") for f in posts(stripe, "/v1/refunds")] == ["400", "700", "300", "300", "300"]
    assert len(stripe.refunds) == 2


def test_a_timeout_leaves_the_charge_uncertain_until_stripe_is_asked(home: Path, stripe: FakeStripe, monkeypatch: pytest.MonkeyPatch) -> None:
    with payment_connector(home, monkeypatch, stripe_url=stripe.url, timeout=0.3) as connector:
        for _ in range(3):
            stripe.fail_next("hang",)
        service = connector.payments()
        with pytest.raises(OutcomeUncertainError) as info:
            service.charge(Money(100, "USD"), reference="slow", payment_method="pm_card_visa")
        assert "timeout" in info.value.message
        [done] = service.reconcile()
        assert done.after == "failed" and done.note == "never received by the vendor"  # the fake hung before processing


def test_stripe_idempotency_error_is_a_clear_error(connector: Connector, stripe: FakeStripe) -> None:
    from connectorctl import IdempotencyConflictError

    service = connector.payments()
    service.charge(Money(100, "USD"), reference="k", payment_method="pm_card_visa")
    service.intents.db.run(lambda c: c.execute("DELETE FROM operation_intents"))  # as if another installation used the reference
    with pytest.raises(IdempotencyConflictError) as info:
        service.charge(Money(200, "USD"), reference="k", payment_method="pm_card_visa")
    assert info.value.code == "idempotency_conflict" and stripe.charges_by_reference() == {"k": 1}
    assert service.unresolved() == []
