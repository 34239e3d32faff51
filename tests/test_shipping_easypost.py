"""EasyPost: the shipping contract against the local v2 fake, plus EasyPost specifics."""

from __future__ import annotations

from typing import Any

from connectorctl.domain.shipping import TrackingStatus
from fake_easypost import API_KEY, FakeEasyPost, tracker_body
from shipping_contract import SHIPMENT, ShippingContract


class TestEasyPostContract(ShippingContract):
    slug = "easypost"
    secret = API_KEY

    def make_fake(self) -> FakeEasyPost:
        return FakeEasyPost()

    def buy_requests(self, fake: FakeEasyPost) -> list[Any]:
        return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/buy")]

    def field_errors(self) -> Any:
        return [{"field": "to_address.street1", "message": "cannot be blank"}]

    def tracking_cases(self) -> list[tuple[str, str | None, TrackingStatus]]:
        return [("EZ1000000001", None, TrackingStatus.PRE_TRANSIT), ("EZ2000000002", "USPS", TrackingStatus.IN_TRANSIT),
                ("EZ3000000003", None, TrackingStatus.OUT_FOR_DELIVERY), ("EZ4000000004", None, TrackingStatus.DELIVERED),
                ("EZ5000000005", None, TrackingStatus.RETURN_TO_SENDER), ("EZ6000000006", None, TrackingStatus.FAILURE)]

    def tracking_webhook(self, tracking_number: str, status: str, at: str) -> dict[str, Any]:
        tracker = tracker_body(tracking_number, "USPS", status, "trk_1")
        tracker["tracking_details"] = [{**tracker["tracking_details"][-1], "datetime": at}]
        return {"id": "evt_1", "object": "Event", "description": "tracker.updated", "mode": "test", "result": tracker}

    def test_parcel_goes_in_ounces_and_inches_wrapped_in_shipment(self, shipping: Any, fake: FakeEasyPost) -> None:
        shipping.get_rates(SHIPMENT)
        body = fake.requests[0].json()["shipment"]
        assert body["parcel"] == {"length": 11.811, "width": 7.874, "height": 3.937, "weight": 42.3288}  # 30x20x10 cm, 1.2 kg
        assert body["to_address"]["zip"] == "02134" and body["reference"] == "order-1042"
        assert fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"

    def test_a_pdf_label_is_converted_after_purchase(self, shipping: Any, fake: FakeEasyPost) -> None:
        label = shipping.buy_label(shipping.get_rates(SHIPMENT)[0].id)
        assert label.label_url.endswith(".pdf") and label.content.startswith(b"%PDF")
        assert [r.path.rsplit("/", 1)[-1] for r in fake.requests if "/shipments/" in r.path] == ["buy", "label"]

    def test_a_second_parcel_is_unsupported_before_any_request(self, shipping: Any, fake: FakeEasyPost) -> None:
        import pytest

        from connectorctl.domain.shipping import Shipment
        from connectorctl.errors import UnsupportedFeatureError

        with pytest.raises(UnsupportedFeatureError, match="multi_parcel"):
            shipping.get_rates(Shipment(SHIPMENT.from_address, SHIPMENT.to_address, SHIPMENT.parcels * 2))
        assert fake.requests == []
