"""What every payment vendor must do, as one suite each vendor's test module subclasses.

A subclass names its fake, how the fake shows the money-moving requests and
the charges it holds, and the vendor's test payment methods; everything else
(idempotent replays, lost answers, declines, retries, partial captures and
refunds, reconciliation) is checked the same way for every vendor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterator

import pytest

from connectorctl import Connector
from connectorctl.domain.money import Money
from connectorctl.domain.payments import PaymentStatus
from connectorctl.errors import OutcomeUncertainError, PaymentDeclinedError
from connectorctl.store.intents import IntentState, ReferenceConflictError, idempotency_key
from tests.fake_payment_server import PaymentFake, Seen
from tests.payment_support import payment_connector


class PaymentContract:
    slug: ClassVar[str]
    good_method: ClassVar[str]
    declined_method: ClassVar[str]
    decline_code: ClassVar[str]

    # -- what a vendor's test module provides ----------------------------------------------
    def make_fake(self) -> PaymentFake:
        raise NotImplementedError

    def creates(self, fake: PaymentFake) -> list[Seen]:
        """The charge-creating requests the fake received, in order."""
        raise NotImplementedError

    def key_of(self, request: Seen) -> str | None:
        raise NotImplementedError

    def held(self, fake: PaymentFake) -> dict[str, int]:
        """Successful charges the vendor holds, per reference."""
        raise NotImplementedError

    # -- fixtures ---------------------------------------------------------------------------
    @pytest.fixture
    def fake(self) -> Iterator[Any]:
        with self.make_fake() as fake:
            yield fake

    @pytest.fixture
    def connector(self, home: Path, fake: PaymentFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connector]:
        with payment_connector(home, monkeypatch, chain=self.slug, **{f"{self.slug}_url": fake.url}) as connector:
            yield connector

    def charge(self, connector: Connector, reference: str, amount: Money = Money(1999, "EUR"), **kwargs: Any) -> Any:
        return connector.payments().charge(amount, reference=reference, payment_method=kwargs.pop("payment_method", self.good_method), **kwargs)

    # -- the contract -----------------------------------------------------------------------
    def test_charge_under_the_key_derived_from_the_reference(self, connector: Connector, fake: PaymentFake) -> None:
        payment = self.charge(connector, "order:1:charge")
        assert payment.status is PaymentStatus.CAPTURED and payment.amount_captured == 1999 and payment.vendor == self.slug
        [request] = self.creates(fake)
        assert self.key_of(request) == idempotency_key("payment", "order:1:charge")
        assert connector.payments().intents.get("payment", "order:1:charge").state is IntentState.SUCCEEDED  # type: ignore[union-attr]

    def test_same_reference_replays_and_other_parameters_are_refused(self, connector: Connector, fake: PaymentFake) -> None:
        first = self.charge(connector, "r1")
        again = self.charge(connector, "r1")
        assert again.replayed and again.payment_id == first.payment_id and len(self.creates(fake)) == 1
        with pytest.raises(ReferenceConflictError):
            self.charge(connector, "r1", Money(2000, "EUR"))
        assert len(self.creates(fake)) == 1

    def test_a_lost_answer_is_retried_under_the_same_key(self, connector: Connector, fake: PaymentFake) -> None:
        fake.fail_next("drop_after")
        assert self.charge(connector, "r2").status is PaymentStatus.CAPTURED
        keys = [self.key_of(r) for r in self.creates(fake)]
        assert len(keys) == 2 and keys[0] == keys[1] and self.held(fake) == {"r2": 1}

    def test_every_answer_lost_is_uncertain_until_reconciled(self, connector: Connector, fake: PaymentFake) -> None:
        for _ in range(3):
            fake.fail_next("drop_after")
        service = connector.payments()
        with pytest.raises(OutcomeUncertainError) as info:
            self.charge(connector, "r3")
        assert info.value.exit_code == 9 and [i.reference for i in service.unresolved()] == ["r3"]
        [done] = service.reconcile()
        assert (done.reference, done.before, done.after) == ("r3", "uncertain", "succeeded")
        assert service.reconcile() == [] and self.held(fake) == {"r3": 1}
        assert self.charge(connector, "r3").replayed

    def test_a_decline_is_final_and_not_counted_against_the_circuit(self, connector: Connector, fake: PaymentFake) -> None:
        with pytest.raises(PaymentDeclinedError) as info:
            self.charge(connector, "d1", payment_method=self.declined_method)
        assert info.value.decline_code == self.decline_code and info.value.exit_code == 8
        assert len(self.creates(fake)) == 1
        assert connector.pipeline.breaker.state(self.slug).consecutive_failures == 0
        with pytest.raises(PaymentDeclinedError):  # replayed from the record, no second call
            self.charge(connector, "d1", payment_method=self.declined_method)
        assert len(self.creates(fake)) == 1

    def test_429_and_503_are_retried_under_the_same_key(self, connector: Connector, fake: PaymentFake) -> None:
        fake.fail_next("status", 429, {"Retry-After": "0"})
        fake.fail_next("status", 503)
        assert self.charge(connector, "r4").status is PaymentStatus.CAPTURED
        keys = {self.key_of(r) for r in self.creates(fake)}
        assert len(self.creates(fake)) == 3 and keys == {idempotency_key("payment", "r4")}

    def test_a_500_is_retried_under_the_same_key_instead_of_going_uncertain(self, connector: Connector, fake: PaymentFake) -> None:
        fake.fail_next("status", 500)
        assert self.charge(connector, "r5").status is PaymentStatus.CAPTURED
        assert [self.key_of(r) for r in self.creates(fake)] == [idempotency_key("payment", "r5")] * 2 and self.held(fake) == {"r5": 1}
        assert connector.payments().unresolved() == []

    def test_authorize_capture_part_refund_twice_and_cancel(self, connector: Connector, fake: PaymentFake) -> None:
        service = connector.payments()
        auth = self.charge(connector, "o:1", Money(5000, "USD"), capture=False)
        assert auth.status is PaymentStatus.AUTHORIZED
        captured = service.capture(auth.payment_id, 4000)
        assert captured.status is PaymentStatus.CAPTURED and captured.amount_captured == 4000
        first = service.refund(auth.payment_id, 1000)
        second = service.refund(auth.payment_id, 1000)
        assert first.refund_id != second.refund_id
        assert second.status is PaymentStatus.PARTIALLY_REFUNDED and second.amount_refunded == 2000
        rest = service.refund(auth.payment_id)
        assert rest.status is PaymentStatus.REFUNDED and rest.amount_refunded == 4000
        other = self.charge(connector, "o:2", Money(100, "USD"), capture=False)
        assert service.cancel(other.payment_id).status is PaymentStatus.CANCELED
        assert service.cancel(other.payment_id).replayed

    def test_zero_decimal_currency(self, connector: Connector, fake: PaymentFake) -> None:
        payment = self.charge(connector, "jpy", Money.parse("1000 JPY"))
        assert payment.amount == Money(1000, "JPY") and payment.amount_captured == 1000
