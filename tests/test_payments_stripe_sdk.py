"""The official ``stripe`` SDK as a test-only oracle.

Run against the local fake, the SDK must succeed (the fake speaks Stripe), and
for the same operation our adapter must send what the SDK sends: method, path,
auth scheme, ``Stripe-Version``, ``Idempotency-Key`` and the decoded form fields.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl

import pytest

from connectorctl import Connector
from connectorctl.domain.money import Money
from connectorctl.store.intents import idempotency_key
from tests.fake_payment_server import Seen
from tests.fake_stripe import API_KEY, FakeStripe
from tests.payment_support import payment_connector

stripe = pytest.importorskip("stripe")
VERSION = "2024-06-20"


def sdk_client(url: str) -> Any:
    return stripe.StripeClient(API_KEY, base_addresses={"api": url}, stripe_version=VERSION, max_network_retries=0)


def shape(req: Seen) -> tuple[Any, ...]:
    scheme = (req.header("Authorization") or "").split(" ")[0]
    fields = sorted(parse_qsl(req.body.decode())) if req.body else sorted((k, v[0]) for k, v in req.query.items())
    return (req.method, req.path, scheme, req.header("Stripe-Version"), req.header("Idempotency-Key"), fields)


@pytest.fixture
def pair(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeStripe, FakeStripe, Connector]]:
    with FakeStripe() as ours, FakeStripe() as theirs:
        with payment_connector(home, monkeypatch, stripe_url=ours.url) as connector, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield ours, theirs, connector


def compare(ours: FakeStripe, theirs: FakeStripe, do_ours: Callable[[], Any], do_sdk: Callable[[], Any]) -> None:
    start_ours, start_theirs = len(ours.requests), len(theirs.requests)
    do_ours()
    do_sdk()
    mine = [shape(r) for r in ours.requests[start_ours:]]
    sdk = [shape(r) for r in theirs.requests[start_theirs:]]
    assert mine and mine[0] == sdk[0]  # our refund reads the payment back afterwards; the SDK call is one request


def test_sdk_and_adapter_send_the_same_payment_requests(pair: tuple[FakeStripe, FakeStripe, Connector]) -> None:
    ours, theirs, connector = pair
    client = sdk_client(theirs.url)
    service = connector.payments()
    ref = "order:42:charge"
    key = idempotency_key("payment", ref)

    create_params = {"amount": 2500, "currency": "eur", "capture_method": "manual", "payment_method_types": ["card"],
                     "metadata": {"order_id": "42", "connectorctl_reference": ref}, "payment_method": "pm_card_visa", "confirm": True}
    compare(ours, theirs,
            lambda: service.charge(Money(2500, "EUR"), reference=ref, capture=False, payment_method="pm_card_visa", metadata={"order_id": "42"}),
            lambda: client.v1.payment_intents.create(params=create_params, options={"idempotency_key": key}))
    pi_id = service.show(reference=ref)[0].payment_id  # type: ignore[union-attr]
    assert theirs.intents[pi_id]["status"] == "requires_capture"  # the SDK's request did the same thing at the fake

    compare(ours, theirs,
            lambda: service.capture(pi_id, 2000),
            lambda: client.v1.payment_intents.capture(pi_id, params={"amount_to_capture": 2000},
                                                      options={"idempotency_key": idempotency_key("payment", f"{pi_id}:capture")}))
    refund_ref = f"{pi_id}:refund:1"
    compare(ours, theirs,
            lambda: service.refund(pi_id, 500, reason="requested_by_customer"),
            lambda: client.v1.refunds.create(params={"payment_intent": pi_id, "amount": 500, "reason": "requested_by_customer",
                                                     "metadata": {"connectorctl_reference": refund_ref}},
                                             options={"idempotency_key": idempotency_key("payment", refund_ref)}))
    compare(ours, theirs,
            lambda: service.retrieve(pi_id),
            lambda: client.v1.payment_intents.retrieve(pi_id, params={"expand": ["latest_charge"]}))
    assert theirs.charges[theirs.intents[pi_id]["latest_charge"]]["amount_refunded"] == 500


def test_sdk_sees_the_fakes_idempotency_and_decline_semantics(pair: tuple[FakeStripe, FakeStripe, Connector]) -> None:
    _, theirs, _ = pair
    client = sdk_client(theirs.url)
    params = {"amount": 100, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k1"})
    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": "k1"})
    assert first.id == again.id and first.status == "succeeded"
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(params={**params, "amount": 200}, options={"idempotency_key": "k1"})
    with pytest.raises(stripe.CardError) as info:
        client.v1.payment_intents.create(params={**params, "payment_method": "pm_card_chargeDeclinedInsufficientFunds"})
    assert info.value.code == "card_declined" and info.value.error.decline_code == "insufficient_funds"
    assert info.value.http_status == 402
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_wrong", base_addresses={"api": theirs.url}).v1.payment_intents.retrieve(first.id)
    listed = client.v1.payment_intents.list(params={"limit": 1})
    assert [pi.id for pi in listed.auto_paging_iter()] == [pi_id for pi_id in sorted(theirs.intents, reverse=True)]
