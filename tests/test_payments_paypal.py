"""PayPal through the payment service against the local fake: the payment contract plus PayPal's specifics
(OAuth2 renewal, request ids, payer approval, whole-unit currencies, failover from Stripe)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from connectorctl import Connector
from connectorctl.adapters.payment.base import IdempotencyConflictError
from connectorctl.domain.money import Money
from connectorctl.domain.payments import PaymentStatus
from connectorctl.errors import InvalidInputError, OutcomeUncertainError, UnsupportedFeatureError
from connectorctl.store.intents import idempotency_key
from tests.fake_payment_server import Seen
from tests.fake_paypal import FakePayPal
from tests.fake_stripe import FakeStripe
from tests.payment_contract import PaymentContract
from tests.payment_support import payment_connector


class TestPayPalContract(PaymentContract):
    slug = "paypal"
    good_method = "vault_ok"
    declined_method = "vault_declined"
    decline_code = "instrument_declined"

    def make_fake(self) -> FakePayPal:
        return FakePayPal()

    def creates(self, fake: FakePayPal) -> list[Seen]:  # type: ignore[override]
        return [r for r in fake.requests if r.method == "POST" and r.path == "/v2/checkout/orders"]

    def key_of(self, request: Seen) -> str | None:
        return request.header("PayPal-Request-Id")

    def held(self, fake: FakePayPal) -> dict[str, int]:  # type: ignore[override]
        return fake.completed_by_custom_id()


@pytest.fixture
def paypal() -> Iterator[FakePayPal]:
    with FakePayPal() as fake:
        yield fake


@pytest.fixture
def connector(home: Path, paypal: FakePayPal, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connector]:
    with payment_connector(home, monkeypatch, paypal_url=paypal.url, chain="paypal") as c:
        yield c


def order_posts(fake: FakePayPal) -> list[dict]:
    return [json.loads(r.body) for r in fake.requests if r.method == "POST" and r.path == "/v2/checkout/orders"]


def test_charge_with_a_vaulted_card_completes_under_the_request_id(connector: Connector, paypal: FakePayPal) -> None:
    payment = connector.payments().charge(Money.parse("19.99 EUR"), reference="order:1:charge", payment_method="vault_ok_1")
    assert payment.status is PaymentStatus.CAPTURED and payment.amount_captured == 1999 and payment.capture_id
    [body] = order_posts(paypal)
    assert body == {"intent": "CAPTURE", "purchase_units": [{"reference_id": "default", "custom_id": "order:1:charge",
                                                               "amount": {"currency_code": "EUR", "value": "19.99"}}],
                    "payment_source": {"card": {"vault_id": "vault_ok_1"}}}
    request = next(r for r in paypal.requests if r.path == "/v2/checkout/orders")
    assert request.header("PayPal-Request-Id") == idempotency_key("payment", "order:1:charge")
    assert request.header("Authorization", ).startswith("Bearer A21AA")
    assert paypal.token_requests == 1


def test_expired_token_is_renewed_once_through_the_credential_store(connector: Connector, paypal: FakePayPal) -> None:
    service = connector.payments()
    service.charge(Money(100, "USD"), reference="a", payment_method="vault_ok")
    paypal.expire_tokens()
    service.charge(Money(100, "USD"), reference="b", payment_method="vault_ok")
    assert paypal.token_requests == 2 and paypal.completed_by_custom_id() == {"a": 1, "b": 1}


def test_no_payment_method_waits_for_the_payer(connector: Connector) -> None:
    payment = connector.payments().charge(Money(100, "USD"), reference="approve")
    assert payment.status is PaymentStatus.REQUIRES_ACTION


def test_request_id_reused_with_other_parameters_is_a_clear_error(connector: Connector, paypal: FakePayPal) -> None:
    service = connector.payments()
    service.charge(Money(100, "USD"), reference="dup", payment_method="vault_ok")
    # Another installation (or a cleared database) reusing the reference with another amount: PayPal refuses.
    service.intents.db.run(lambda c: c.execute("DELETE FROM operation_intents"))
    with pytest.raises(IdempotencyConflictError) as info:
        service.charge(Money(200, "USD"), reference="dup", payment_method="vault_ok")
    assert info.value.code == "idempotency_conflict" and paypal.completed_by_custom_id() == {"dup": 1}


def test_whole_unit_currencies_and_unsupported_metadata(connector: Connector, paypal: FakePayPal) -> None:
    service = connector.payments()
    service.charge(Money.parse("1000 JPY"), reference="jpy", payment_method="vault_ok")
    service.charge(Money.parse("1500 HUF"), reference="huf", payment_method="vault_ok")
    assert [b["purchase_units"][0]["amount"]["value"] for b in order_posts(paypal)] == ["1000", "1500"]
    with pytest.raises(InvalidInputError):  # PayPal takes HUF in whole units only
        service.charge(Money.parse("1.50 HUF"), reference="huf2", payment_method="vault_ok")
    with pytest.raises(UnsupportedFeatureError):
        service.charge(Money(100, "USD"), reference="meta", payment_method="vault_ok", metadata={"k": "v"})
    assert service.unresolved() == []


def test_failover_to_paypal_only_when_stripe_provably_did_not_act(home: Path, paypal: FakePayPal, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeStripe() as stripe:
        with payment_connector(home, monkeypatch, stripe_url=stripe.url, paypal_url=paypal.url, chain="[stripe, paypal]") as connector:
            service = connector.payments()
            for _ in range(3):
                stripe.fail_next("status", 503)
            moved = service.charge(Money(100, "USD"), reference="f1", payment_method="vault_ok")
            assert moved.vendor == "paypal"
            keys = {r.header("Idempotency-Key") for r in stripe.requests} | {r.header("PayPal-Request-Id") for r in paypal.requests if r.path.startswith("/v2")}
            assert keys == {idempotency_key("payment", "f1")}  # the same key after the failover decision
            for _ in range(3):
                stripe.fail_next("status", 500)  # may have been processed: never sent elsewhere
            with pytest.raises(OutcomeUncertainError):
                service.charge(Money(100, "USD"), reference="f2", payment_method="pm_card_visa")
            assert "f2" not in paypal.completed_by_custom_id()
