"""The official SDKs as oracles: each runs a whole shipping flow against our fake (proving the fake
speaks the vendor's contract well enough for the vendor's own client), then connectorctl runs the same
flow against a fresh fake, and every request must match the SDK's: method, path, query, auth, JSON body.

Both fakes number their objects in order, so the same flow yields the same ids and paths.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.shipping import DistanceUnit, LabelFormat, MassUnit
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from fake_easypost import API_KEY, FakeEasyPost
from fake_shippo import TOKEN, FakeShippo
from shipping_contract import SHIPMENT, settings_for

easypost = pytest.importorskip("easypost")
shippo = pytest.importorskip("shippo")


def _shape(req: Any) -> dict[str, Any]:
    return {"method": req.method, "path": req.path, "query": req.query, "authorization": req.headers.get("authorization"),
            "json": req.json() if req.body else None}


def our_flow(fake: Any, slug: str, secret: str, home: Path, tracking: tuple[str, str]) -> None:
    with Connector(settings_for(home, slug, fake), clock=FakeClock(), credentials=StaticCredentialProvider({slug: {"api_key": secret}})) as c:
        shipping = c.shipping()
        label = shipping.buy_label(shipping.get_rates(SHIPMENT)[0].id, LabelFormat.PDF)
        shipping.track(*tracking)
        shipping.verify_address(SHIPMENT.to_address)
        shipping.cancel(label.shipment_id)


def assert_same_requests(sdk_flow: Callable[[Any], None], make_fake: Callable[[], Any], slug: str, secret: str, home: Path,
                         tracking: tuple[str, str]) -> None:
    with make_fake() as sdk_fake:
        sdk_flow(sdk_fake)
        assert sdk_fake.violations == [] and all(200 <= s < 300 for s in sdk_fake.statuses), sdk_fake.statuses
        expected = [_shape(r) for r in sdk_fake.requests]
    with make_fake() as our_fake:
        our_flow(our_fake, slug, secret, home, tracking)
        ours = [_shape(r) for r in our_fake.requests]
    assert ours == expected


def test_easypost_sdk_runs_against_the_fake_and_our_requests_equal_its_own(home: Path) -> None:
    import requests

    parcel = SHIPMENT.parcels[0]
    length, width, height = (float(v) for v in parcel.dimensions_in(DistanceUnit.IN))

    def sdk_flow(fake: FakeEasyPost) -> None:
        client = easypost.EasyPostClient(API_KEY, api_base=f"{fake.url}/v2")
        shipment = client.shipment.create(
            to_address=SHIPMENT.to_address.to_dict(), from_address=SHIPMENT.from_address.to_dict(), reference=SHIPMENT.reference,
            parcel={"length": length, "width": width, "height": height, "weight": float(parcel.weight_in(MassUnit.OZ))},
        )
        cheapest = min(shipment.rates, key=lambda r: Decimal(r.rate))
        bought = client.shipment.buy(shipment.id, rate={"id": cheapest.id})
        assert bought.tracking_code and bought.postage_label.label_url
        converted = client.shipment.label(shipment.id, file_format="PDF")
        assert requests.get(converted.postage_label.label_pdf_url, timeout=5).content.startswith(b"%PDF")
        assert client.tracker.create(tracking_code="EZ2000000002", carrier="USPS").status == "in_transit"
        assert client.address.create(verify=True, **SHIPMENT.to_address.to_dict()).verifications.delivery.success
        assert client.shipment.refund(shipment.id).refund_status == "submitted"

    assert_same_requests(sdk_flow, FakeEasyPost, "easypost", API_KEY, home, ("EZ2000000002", "USPS"))


def test_shippo_sdk_runs_against_the_fake_and_our_requests_equal_its_own(home: Path) -> None:
    import requests
    from shippo.models import components

    def address(a: Any) -> Any:
        return components.AddressCreateRequest(**a.to_dict())

    parcel = SHIPMENT.parcels[0]

    def sdk_flow(fake: FakeShippo) -> None:
        sdk = shippo.Shippo(api_key_header=TOKEN, server_url=fake.url)
        shipment = sdk.shipments.create(components.ShipmentCreateRequest(
            address_from=address(SHIPMENT.from_address), address_to=address(SHIPMENT.to_address), async_=False, metadata=SHIPMENT.reference,
            parcels=[components.ParcelCreateRequest(length=str(parcel.length), width=str(parcel.width), height=str(parcel.height),
                                                    distance_unit=components.DistanceUnitEnum.CM, weight=str(parcel.weight),
                                                    mass_unit=components.WeightUnitEnum.KG)],
        ))
        cheapest = min(shipment.rates, key=lambda r: Decimal(r.amount))
        transaction = sdk.transactions.create(components.TransactionCreateRequest(
            rate=cheapest.object_id, label_file_type=components.LabelFileTypeEnum.PDF, async_=False))
        assert transaction.status == components.TransactionStatusEnum.SUCCESS and transaction.tracking_number
        assert requests.get(transaction.label_url, timeout=5).content.startswith(b"%PDF")
        track = sdk.tracking_status.get("SHIPPO_TRANSIT", "shippo")
        assert track.tracking_status.status == components.TrackingStatusEnum.TRANSIT
        checked = sdk.addresses.create(components.AddressCreateRequest(**SHIPMENT.to_address.to_dict(), validate=True))
        assert checked.validation_results.is_valid
        assert sdk.refunds.create(transaction=transaction.object_id, async_=False).status == components.RefundStatus.QUEUED

    assert_same_requests(sdk_flow, FakeShippo, "shippo", TOKEN, home, ("SHIPPO_TRANSIT", "shippo"))


def test_shippo_sdk_lists_the_transactions_of_a_rate_the_way_we_ask_after_a_lost_answer(home: Path) -> None:
    """The lookup that settles a lost purchase is the SDK's own ``transactions.list(rate=...)``."""
    from shippo.models import operations

    with FakeShippo() as fake:
        with Connector(settings_for(home, "shippo", fake), clock=FakeClock(), credentials=StaticCredentialProvider({"shippo": {"api_key": TOKEN}})) as c:
            rate = c.shipping().get_rates(SHIPMENT)[0]
            fake.lose_next_buy = True
            label = c.shipping().buy_label(rate.id)
        ours = [_shape(r) for r in fake.requests if r.method == "GET" and r.path == "/transactions"]
        sdk = shippo.Shippo(api_key_header=TOKEN, server_url=fake.url)
        listed = sdk.transactions.list(operations.ListTransactionsRequest(rate=rate.id))
        assert [t.tracking_number for t in listed.results] == [label.tracking_number]
        sdk_request = _shape(fake.requests[-1])
    assert len(ours) == 1
    assert {k: ours[0][k] for k in ("method", "path", "authorization")} == {k: sdk_request[k] for k in ("method", "path", "authorization")}
    assert ours[0]["query"]["rate"] == sdk_request["query"]["rate"] == [rate.id]
