"""Shippo: the shipping contract against the local fake, plus Shippo specifics."""

from __future__ import annotations

from typing import Any

import pytest

from connectorctl.domain.shipping import TrackingStatus
from fake_shippo import TOKEN, FakeShippo, track_body
from shipping_contract import SHIPMENT, ShippingContract


class TestShippoContract(ShippingContract):
    slug = "shippo"
    secret = TOKEN

    def make_fake(self) -> FakeShippo:
        return FakeShippo()

    def buy_requests(self, fake: FakeShippo) -> list[Any]:
        return [r for r in fake.requests if r.method == "POST" and r.path == "/transactions"]

    def field_errors(self) -> Any:
        return {"address_to": ["street1: This field may not be blank."]}

    def tracking_cases(self) -> list[tuple[str, str | None, TrackingStatus]]:
        return [("SHIPPO_PRE_TRANSIT", "shippo", TrackingStatus.PRE_TRANSIT), ("SHIPPO_TRANSIT", "shippo", TrackingStatus.IN_TRANSIT),
                ("SHIPPO_DELIVERED", "shippo", TrackingStatus.DELIVERED), ("SHIPPO_RETURNED", "shippo", TrackingStatus.RETURN_TO_SENDER),
                ("SHIPPO_FAILURE", "shippo", TrackingStatus.FAILURE)]

    def tracking_webhook(self, tracking_number: str, status: str, at: str) -> dict[str, Any]:
        shippo_status = {"delivered": "DELIVERED", "in_transit": "TRANSIT"}[status]
        track = track_body("usps", tracking_number, shippo_status)
        track["tracking_status"] = {**track["tracking_status"], "status_date": at, "substatus": None}
        track["tracking_history"] = [track["tracking_status"]]
        return {"event": "track_updated", "test": True, "data": track}

    def test_parcels_keep_their_units_and_rates_are_synchronous(self, shipping: Any, fake: FakeShippo) -> None:
        shipping.get_rates(SHIPMENT)
        body = fake.requests[0].json()
        assert body["parcels"] == [{"length": "30", "width": "20", "height": "10", "distance_unit": "cm", "weight": "1.2", "mass_unit": "kg"}]
        assert body["async"] is False and body["metadata"] == "order-1042"
        assert fake.requests[0].headers["authorization"] == f"ShippoToken {TOKEN}"

    def test_a_carrier_refusal_at_http_201_is_not_a_label(self, shipping: Any, fake: FakeShippo) -> None:
        rate = shipping.get_rates(SHIPMENT)[0]
        fake.fail_next_buy = "Address could not be validated by the carrier."
        with pytest.raises(Exception, match="label refused.*could not be validated") as info:
            shipping.buy_label(rate.id)
        assert info.value.code == "label_refused"
        assert shipping.buy_label(rate.id).tracking_number  # refused means nothing was bought: try again
        assert len(fake.buys) == 1

    def test_a_label_format_is_fixed_at_purchase(self, shipping: Any, fake: FakeShippo) -> None:
        from connectorctl.domain.shipping import LabelFormat
        from connectorctl.errors import UnsupportedFeatureError

        rate = shipping.get_rates(SHIPMENT)[0]
        assert shipping.buy_label(rate.id, LabelFormat.PDF).label_format is LabelFormat.PDF
        with pytest.raises(UnsupportedFeatureError, match="this one is pdf"):
            shipping.buy_label(rate.id, LabelFormat.ZPL)
        assert len(fake.buys) == 1

    def test_tracking_needs_the_carrier(self, shipping: Any, fake: FakeShippo) -> None:
        from connectorctl.errors import InvalidInputError

        with pytest.raises(InvalidInputError, match="--carrier"):
            shipping.track("SHIPPO_TRANSIT")
        assert fake.requests == []

    def test_out_for_delivery_comes_from_the_substatus(self, shipping: Any) -> None:
        tracking = shipping.track("SHIPPO_DELIVERED", "shippo")
        assert [e.status for e in tracking.events] == [TrackingStatus.PRE_TRANSIT, TrackingStatus.IN_TRANSIT,
                                                       TrackingStatus.OUT_FOR_DELIVERY, TrackingStatus.DELIVERED]
        assert tracking.events[2].vendor_status == "TRANSIT" and tracking.events[2].message == "Out for delivery."

    def test_two_parcels_in_one_shipment(self, shipping: Any, fake: FakeShippo) -> None:
        from connectorctl.domain.shipping import Shipment

        assert shipping.get_rates(Shipment(SHIPMENT.from_address, SHIPMENT.to_address, SHIPMENT.parcels * 2))
        assert len(fake.requests[0].json()["parcels"]) == 2
