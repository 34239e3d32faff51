"""Stripe through the payment service against the local fake: idempotency, declines, lost answers."""

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
from tests.fake_stripe import FakeStripe
from tests.payment_support import payment_connector, payment_env


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


def test_same_reference_replays_without_a_second_call(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    first = service.charge(Money(500, "USD"), reference="r1", payment_method="pm_card_visa")
    again = service.charge(Money(500, "USD"), reference="r1", payment_method="pm_card_visa")
    assert again.replayed and again.payment_id == first.payment_id
    assert len(posts(stripe, "/v1/payment_intents")) == 1
    with pytest.raises(ReferenceConflictError):
        service.charge(Money(600, "USD"), reference="r1", payment_method="pm_card_visa")
    assert len(posts(stripe, "/v1/payment_intents")) == 1


def test_lost_answer_is_retried_with_the_same_key_and_replayed_by_stripe(connector: Connector, stripe: FakeStripe) -> None:
    stripe.fail_next("drop_after",)
    payment = connector.payments().charge(Money(700, "USD"), reference="r2", payment_method="pm_card_visa")
    assert payment.status is PaymentStatus.CAPTURED
    keys = [r.header("Idempotency-Key") for r in stripe.requests if r.method == "POST"]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert stripe.charges_by_reference() == {"r2": 1}


def test_every_answer_lost_leaves_the_intent_uncertain_then_reconcile_settles_it(connector: Connector, stripe: FakeStripe) -> None:
    for _ in range(3):
        stripe.fail_next("drop_after",)
    service = connector.payments()
    with pytest.raises(OutcomeUncertainError) as info:
        service.charge(Money(800, "USD"), reference="r3", payment_method="pm_card_visa")
    assert info.value.exit_code == 9 and "reconcile" in (info.value.hint or "")
    assert [i.reference for i in service.unresolved()] == ["r3"]
    [done] = service.reconcile()
    assert (done.reference, done.before, done.after) == ("r3", "uncertain", "succeeded")
    assert service.reconcile() == []  # running it again is harmless
    assert service.intents.get("payment", "r3").state is IntentState.SUCCEEDED  # type: ignore[union-attr]
    assert stripe.charges_by_reference() == {"r3": 1}


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


@pytest.mark.parametrize(("method", "code"), [("pm_card_chargeDeclined", "generic_decline"),
                                              ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds")])
def test_decline_is_final_not_retried_and_not_counted_against_the_circuit(connector: Connector, stripe: FakeStripe, method: str, code: str) -> None:
    service = connector.payments()
    with pytest.raises(PaymentDeclinedError) as info:
        service.charge(Money(1100, "USD"), reference="r6", payment_method=method)
    assert info.value.decline_code == code and info.value.exit_code == 8
    assert len(posts(stripe, "/v1/payment_intents")) == 1
    assert connector.pipeline.breaker.state("stripe").consecutive_failures == 0
    with pytest.raises(PaymentDeclinedError):  # the same reference replays the decline without calling
        service.charge(Money(1100, "USD"), reference="r6", payment_method=method)
    assert len(posts(stripe, "/v1/payment_intents")) == 1
    payment, _ = service.show(reference="r6")
    assert payment is not None and payment.status is PaymentStatus.FAILED and payment.decline_code == code


def test_rate_limit_and_unavailable_are_retried_with_the_same_key(connector: Connector, stripe: FakeStripe) -> None:
    stripe.fail_next("status", 429, {"Retry-After": "0"})
    stripe.fail_next("status", 503)
    payment = connector.payments().charge(Money(1200, "USD"), reference="r7", payment_method="pm_card_visa")
    assert payment.status is PaymentStatus.CAPTURED
    keys = {r.header("Idempotency-Key") for r in stripe.requests if r.method == "POST"}
    assert len(keys) == 1 and len(posts(stripe, "/v1/payment_intents")) == 3


def test_authorize_capture_partial_refunds(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    auth = service.charge(Money(5000, "EUR"), reference="o:8", capture=False, payment_method="pm_card_visa")
    assert auth.status is PaymentStatus.AUTHORIZED and posts(stripe, "/v1/payment_intents")[0]["capture_method"] == "manual"
    captured = service.capture(auth.payment_id, Money(4000, "EUR"))
    assert captured.status is PaymentStatus.CAPTURED and captured.amount_captured == 4000
    first = service.refund(auth.payment_id, 1000, reason="requested_by_customer")
    second = service.refund(auth.payment_id, 1000)
    assert first.refund_id != second.refund_id
    assert second.status is PaymentStatus.PARTIALLY_REFUNDED and second.amount_refunded == 2000
    rest = service.refund(auth.payment_id)
    assert rest.status is PaymentStatus.REFUNDED and rest.amount_refunded == 4000
    refund_forms = posts(stripe, "/v1/refunds")
    assert [f.get("amount") for f in refund_forms] == ["1000", "1000", None]
    assert len({f["metadata[connectorctl_reference]"] for f in refund_forms}) == 3


def test_cancel_an_authorization(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    auth = service.charge(Money(300, "GBP"), reference="o:9", capture=False, payment_method="pm_card_visa")
    assert service.cancel(auth.payment_id).status is PaymentStatus.CANCELED
    assert service.cancel(auth.payment_id).replayed


def test_zero_and_three_decimal_currencies(connector: Connector, stripe: FakeStripe) -> None:
    service = connector.payments()
    service.charge(Money.parse("1000 JPY"), reference="jpy", payment_method="pm_card_visa")
    service.charge(Money.parse("1.500 KWD"), reference="kwd", payment_method="pm_card_visa")
    amounts = [(f["amount"], f["currency"]) for f in posts(stripe, "/v1/payment_intents")]
    assert amounts == [("1000", "jpy"), ("1500", "kwd")]


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
