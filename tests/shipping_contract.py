"""What every shipping vendor must do, against its local fake; each vendor's test file subclasses it.

The shipment, the label rule (bought once, whatever is lost or re-run) and
the error mapping are the same for every vendor; only the fake differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl.config import CircuitBreakerSettings, RetrySettings, Settings, VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.shipping import Address, LabelFormat, Parcel, Shipment, TrackingStatus
from connectorctl.errors import AuthenticationError, ConnectorError, RateLimitedError, ValidationError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from connectorctl.store.intents import IntentState, ReferenceConflictError
from email_contract import log_rows

SHIPMENT = Shipment(
    Address("Acme Parts", "417 Montgomery St", "San Francisco", "94104", "US", state="CA", phone="+14155550100"),
    Address("Ann Buyer", "1 Main St", "Boston", "02134", "US", state="MA"),
    (Parcel.of(length=30, width=20, height=10, distance_unit="cm", weight="1.2", mass_unit="kg"),),
    reference="order-1042",
)


def settings_for(home: Path, slug: str, fake: Any) -> Settings:
    return Settings(
        home=home, database=home / "state.db", config_path=None, shipping_vendor=slug,
        retry_policy=RetrySettings(max_attempts=3, initial_delay_ms=10, jitter=False),
        circuit_breaker=CircuitBreakerSettings(failure_threshold=5, timeout_seconds=60),
        vendors={slug: VendorSettings(base_url=fake.url, timeout_seconds=2.0, connect_timeout_seconds=1.0)},
    )


class ShippingContract:
    slug = ""
    secret = ""

    def make_fake(self) -> Any:
        raise NotImplementedError

    def tracking_cases(self) -> list[tuple[str, str | None, TrackingStatus]]:
        """(tracking number, carrier, the status it must normalize to) for the fake's test numbers."""
        raise NotImplementedError

    def buy_requests(self, fake: Any) -> list[Any]:
        raise NotImplementedError

    def tracking_webhook(self, tracking_number: str, status: str, at: str) -> dict[str, Any]:
        """A vendor webhook body for one tracking update (one event ``status`` at ``at``)."""
        raise NotImplementedError

    @pytest.fixture
    def fake(self) -> Iterator[Any]:
        with self.make_fake() as fake:
            yield fake

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def connector(self, fake: Any, clock: FakeClock, home: Path) -> Iterator[Connector]:
        with Connector(settings_for(home, self.slug, fake), clock=clock,
                       credentials=StaticCredentialProvider({self.slug: {"api_key": self.secret}})) as c:
            yield c

    @pytest.fixture
    def shipping(self, connector: Connector) -> Any:
        return connector.shipping()

    def test_the_service_is_a_shipping_provider(self, shipping: Any) -> None:
        from connectorctl import ShippingProvider

        assert isinstance(shipping, ShippingProvider)

    # -- rates ----------------------------------------------------------------------
    def test_rates_come_back_cheapest_first_as_money(self, shipping: Any, fake: Any) -> None:
        rates = shipping.get_rates(SHIPMENT)
        assert len(rates) >= 2 and all(r.vendor == self.slug and r.price.currency == "USD" for r in rates)
        assert [r.price.amount for r in rates] == sorted(r.price.amount for r in rates)
        assert len({r.shipment_id for r in rates}) == 1
        assert fake.violations == []

    def test_a_vendor_validation_error_is_one_clear_error(self, shipping: Any, fake: Any) -> None:
        bad = Shipment(SHIPMENT.from_address, Address("Ann", "1 Main St", "Boston", "02134", "US"), SHIPMENT.parcels)
        fake.fail_next("invalid", errors=self.field_errors(), message="to_address.street1 cannot be blank")
        with pytest.raises(ValidationError, match="street1") as info:
            shipping.get_rates(bad)
        assert not info.value.transient
        assert len(fake.requests) == 1  # a 4xx is never retried

    def field_errors(self) -> Any:
        return None

    def test_rate_limit_waits_for_retry_after_then_succeeds(self, shipping: Any, fake: Any, clock: FakeClock) -> None:
        fake.fail_next("rate_limited", retry_after=7)
        assert shipping.get_rates(SHIPMENT)
        assert clock.sleeps and clock.sleeps[0] >= 7

    def test_a_503_on_a_quote_is_retried(self, shipping: Any, fake: Any) -> None:
        fake.fail_next("unavailable", times=2)
        assert shipping.get_rates(SHIPMENT)
        assert len(fake.requests) == 3

    def test_bad_credentials_are_auth_failed_and_not_retried(self, fake: Any, clock: FakeClock, home: Path) -> None:
        with Connector(settings_for(home, self.slug, fake), clock=clock,
                       credentials=StaticCredentialProvider({self.slug: {"api_key": "wrong-key"}})) as c:
            with pytest.raises(AuthenticationError):
                c.shipping().get_rates(SHIPMENT)
        assert len(fake.requests) == 1

    def test_verify_credentials_is_one_harmless_read(self, connector: Connector, fake: Any) -> None:
        assert connector.adapter(self.slug, "shipping").verify_credentials().http_status == 200
        assert [r.method for r in fake.requests] == ["GET"]

    # -- labels ---------------------------------------------------------------------
    def test_buy_saves_the_label_file_and_records_the_shipment(self, shipping: Any, fake: Any, tmp_path: Path) -> None:
        rate = shipping.get_rates(SHIPMENT)[0]
        label = shipping.buy_label(rate.id, LabelFormat.PDF, label_file=tmp_path / "label.pdf")
        assert label.tracking_number and label.shipment_id == rate.shipment_id and label.price == rate.price
        assert (tmp_path / "label.pdf").read_bytes().startswith(b"%PDF")
        record = shipping.records.get(self.slug, rate.shipment_id)
        assert record["tracking_number"] == label.tracking_number and record["label_file"] == str(tmp_path / "label.pdf")
        assert len(self.buy_requests(fake)) == 1 and fake.violations == []

    def test_label_bytes_are_returned_without_a_file(self, shipping: Any) -> None:
        rate = shipping.get_rates(SHIPMENT)[0]
        label = shipping.buy_label(rate.id, LabelFormat.ZPL)
        assert label.content is not None and label.content.startswith(b"^XA") and label.path is None

    def test_buying_again_returns_the_same_label_without_a_second_purchase(self, shipping: Any, fake: Any) -> None:
        rates = shipping.get_rates(SHIPMENT)
        first = shipping.buy_label(rates[0].id)
        again = shipping.buy_label(rates[0].id)
        assert again.replayed and again.tracking_number == first.tracking_number
        with pytest.raises(ReferenceConflictError, match=f"already has a label bought .* rate {rates[0].id}"):
            shipping.buy_label(rates[1].id)  # another rate of the same shipment: refused before any request
        assert len(self.buy_requests(fake)) == 1 and len(fake.buys) == 1

    def test_a_lost_answer_is_settled_by_asking_the_vendor_not_by_buying_again(self, shipping: Any, fake: Any) -> None:
        rate = shipping.get_rates(SHIPMENT)[0]
        fake.lose_next_buy = True
        label = shipping.buy_label(rate.id)
        assert label.tracking_number and len(fake.buys) == 1 and len(self.buy_requests(fake)) == 1
        intent = shipping.intents.get("shipping", f"label:{self.slug}:{rate.shipment_id}")
        assert intent.state is IntentState.SUCCEEDED and intent.attempts == 1

    def test_two_buyers_at_once_get_one_label(self, shipping: Any, fake: Any) -> None:
        import threading

        from connectorctl.errors import ConnectorctlError

        rate = shipping.get_rates(SHIPMENT)[0]
        fake.stall_buys = 1.0
        outcomes: list[str] = []

        def buy() -> None:
            try:
                outcomes.append(shipping.buy_label(rate.id).tracking_number)
            except ConnectorctlError as exc:
                outcomes.append(exc.code)

        threads = [threading.Thread(target=buy) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(outcomes) == 3 and len(fake.buys) == 1
        assert len({o for o in outcomes if o != "in_progress"}) == 1  # one label; the others waited their turn or replayed it

    def test_a_500_that_bought_nothing_is_safe_to_run_again(self, shipping: Any, fake: Any) -> None:
        rate = shipping.get_rates(SHIPMENT)[0]
        fake.fail_next("server_error")
        with pytest.raises(ConnectorError) as info:
            shipping.buy_label(rate.id)
        assert "safe to run the command again" in (info.value.hint or "")
        assert fake.buys == []  # never retried blindly
        assert shipping.buy_label(rate.id).tracking_number and len(fake.buys) == 1

    def test_a_refused_purchase_settles_failed_and_may_be_tried_again(self, shipping: Any, fake: Any) -> None:
        rate = shipping.get_rates(SHIPMENT)[0]
        fake.fail_next("rate_limited", retry_after=1)
        fake.fail_next("rate_limited", retry_after=1)
        fake.fail_next("rate_limited", retry_after=1)
        with pytest.raises(RateLimitedError):
            shipping.buy_label(rate.id)
        intent = shipping.intents.get("shipping", f"label:{self.slug}:{rate.shipment_id}")
        assert intent.state is IntentState.FAILED
        assert shipping.buy_label(rate.id).tracking_number and len(fake.buys) == 1

    def test_an_unknown_rate_is_invalid_input_before_any_request(self, shipping: Any, fake: Any) -> None:
        from connectorctl.errors import InvalidInputError

        with pytest.raises(InvalidInputError, match="unknown rate"):
            shipping.buy_label("rate_nobody_quoted")
        assert fake.requests == []

    def test_no_secret_reaches_a_log_row(self, shipping: Any, connector: Connector) -> None:
        shipping.buy_label(shipping.get_rates(SHIPMENT)[0].id)
        rows = log_rows(connector)
        assert {r["operation"] for r in rows} >= {"get_rates", "buy_label", "download_label"}
        assert all(self.secret not in json.dumps(r) for r in rows)

    # -- tracking, refunds, addresses -----------------------------------------------
    def test_tracking_statuses_are_normalized_with_time_place_and_carrier_text(self, shipping: Any) -> None:
        for number, carrier, expected in self.tracking_cases():
            tracking = shipping.track(number, carrier)
            assert tracking.status is expected, number
            last = tracking.events[-1]
            assert last.occurred_at and last.occurred_at.endswith("Z") and last.location and last.message

    def test_cancel_requests_a_refund_once(self, shipping: Any, fake: Any) -> None:
        label = shipping.buy_label(shipping.get_rates(SHIPMENT)[0].id)
        refund = shipping.cancel(label.shipment_id)
        assert refund.status in ("submitted", "queued") and refund.shipment_id == label.shipment_id
        assert shipping.records.get(self.slug, label.shipment_id)["refund_status"] == refund.status
        with pytest.raises(ValidationError):
            shipping.cancel(label.shipment_id)

    def test_verify_address_says_valid_or_why_not(self, shipping: Any) -> None:
        good = shipping.verify_address(SHIPMENT.to_address)
        assert good.valid and good.address is not None and good.vendor == self.slug
        bad = shipping.verify_address(Address("Ann", "99 Undeliverable Rd", "Nowhere", "00000", "US"))
        assert not bad.valid and bad.messages

    # -- tracking webhooks --------------------------------------------------------------
    def test_webhook_updates_move_a_shipment_forward_only(self, connector: Connector, shipping: Any) -> None:
        from connectorctl.shipping.webhooks import apply_tracking_webhook

        label = shipping.buy_label(shipping.get_rates(SHIPMENT)[0].id)
        body = self.tracking_webhook(label.tracking_number, "delivered", "2026-12-03T10:00:00Z")
        [change] = apply_tracking_webhook(connector, self.slug, body)
        assert change.applied and change.status is TrackingStatus.DELIVERED
        late = self.tracking_webhook(label.tracking_number, "in_transit", "2026-12-02T10:00:00Z")
        [stale] = apply_tracking_webhook(connector, self.slug, late)  # arrives after, happened before
        assert not stale.applied and stale.status is TrackingStatus.DELIVERED
        [again] = apply_tracking_webhook(connector, self.slug, body)  # the same delivery twice
        assert not again.applied
        record = shipping.records.get(self.slug, label.shipment_id)
        assert record["status"] == "delivered" and record["status_at"] == "2026-12-03T10:00:00Z"
