"""Shippo: shipments with rates, transactions (label purchases), tracks, refunds, address validation.

Contract: ``Authorization: ShippoToken <token>``, JSON bodies, parcels with
their own units as strings, 32-hex ``object_id``s.  Rates and labels are
asynchronous unless the body says ``"async": false``, which we always do.
Validation errors are 400 ``{"<field>": ["message"]}``; a carrier that
refuses a label answers **201** with ``status: "ERROR"`` and ``messages``, so
a 2xx is not a purchase until ``status`` is ``SUCCESS``.  Shippo does not stop
a second transaction for the same rate: the lookup that answers a lost buy is
``GET /transactions?rate=<rate id>``.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

import httpx

from connectorctl.adapters.declaration import AuthScheme, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.shipping.base import ShippingAdapter
from connectorctl.domain.money import Money
from connectorctl.domain.shipping import (
    Address,
    AddressVerification,
    Label,
    LabelFormat,
    Parcel,
    Rate,
    Refund,
    Shipment,
    Tracking,
    TrackingEvent,
    TrackingStatus,
    place,
    utc_time,
)
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import InvalidInputError, VendorRejectedError
from connectorctl.settings import VendorSettings

FILE_TYPES = {LabelFormat.PDF: "PDF", LabelFormat.PNG: "PNG", LabelFormat.ZPL: "ZPLII"}
_STATUSES = {
    "PRE_TRANSIT": TrackingStatus.PRE_TRANSIT,
    "TRANSIT": TrackingStatus.IN_TRANSIT,
    "DELIVERED": TrackingStatus.DELIVERED,
    "RETURNED": TrackingStatus.RETURN_TO_SENDER,
    "FAILURE": TrackingStatus.FAILURE,
    "UNKNOWN": TrackingStatus.UNKNOWN,
}
# Shippo's substatus codes say more than its six statuses (out for delivery is TRANSIT at the top level).
_SUBSTATUSES = {
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "pickup_available": TrackingStatus.AVAILABLE_FOR_PICKUP,
    "return_to_sender": TrackingStatus.RETURN_TO_SENDER,
}


class LabelRefusedError(VendorRejectedError):
    """The carrier refused the label (Shippo's 201 with ``status: ERROR``): nothing was bought."""

    code = "label_refused"


class ShippoShippingAdapter(ShippingAdapter[VendorSettings]):
    default_base_url = "https://api.goshippo.com"
    capabilities = frozenset({"multi_parcel"})

    def auth_headers(self, creds: Credentials) -> dict[str, str]:
        return {"Authorization": f"ShippoToken {creds.data['api_key']}", "Accept": "application/json"}

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return self.request("GET", "/addresses", creds, params={"results": 1})

    def build_rates(self, shipment: Shipment, creds: Credentials) -> VendorRequest:
        body: dict[str, Any] = {
            "address_from": shipment.from_address.to_dict(),
            "address_to": shipment.to_address.to_dict(),
            "parcels": [_parcel(p) for p in shipment.parcels],
            "async": False,
        }
        if shipment.reference:
            body["metadata"] = shipment.reference
        return self.request("POST", "/shipments", creds, json=body)

    def parse_rates(self, response: httpx.Response) -> tuple[str, list[Rate]]:
        body = response.json()
        return body["object_id"], [self._rate(r) for r in body.get("rates") or []]

    def _rate(self, r: Mapping[str, Any]) -> Rate:
        service = (r.get("servicelevel") or {}).get("name") or ""
        return Rate(
            r["object_id"],
            self.slug,
            r["shipment"],
            r["provider"],
            service,
            Money.of(r["amount"], r["currency"]),
            r.get("estimated_days"),
            r.get("arrives_by"),
        )

    def build_buy(self, rate: Rate, label_format: LabelFormat, creds: Credentials) -> VendorRequest:
        body = {"rate": rate.id, "label_file_type": FILE_TYPES[label_format], "async": False}
        return self.request("POST", "/transactions", creds, json=body)

    def parse_buy(self, response: httpx.Response, rate: Rate, label_format: LabelFormat) -> Label:
        transaction = response.json()
        if transaction.get("status") != "SUCCESS":
            texts = (
                "; ".join(str(m.get("text")) for m in transaction.get("messages") or [] if isinstance(m, Mapping))
                or "no reason given"
            )
            raise LabelRefusedError(
                f"{self.slug}: label refused ({transaction.get('status')}): {texts}",
                service=self.slug,
                http_status=response.status_code,
                response_data=transaction,
            )
        return self._label(transaction, rate, label_format)

    def build_purchase_lookup(self, rate: Rate, creds: Credentials) -> VendorRequest:
        return self.request("GET", "/transactions", creds, params={"rate": rate.id})

    def parse_purchase_lookup(self, response: httpx.Response, rate: Rate, label_format: LabelFormat) -> Label | None:
        bought = [
            t for t in response.json().get("results") or [] if t.get("status") == "SUCCESS" and _rate_id(t) == rate.id
        ]
        return self._label(bought[0], rate, label_format) if bought else None

    def _label(self, transaction: Mapping[str, Any], rate: Rate, label_format: LabelFormat) -> Label:
        fmt = next((f for f, name in FILE_TYPES.items() if name == transaction.get("label_file_type")), label_format)
        return Label(
            self.slug,
            rate.shipment_id,
            rate.id,
            transaction.get("tracking_number") or "",
            rate.carrier,
            rate.service,
            rate.price,
            fmt,
            transaction.get("label_url") or None,
            transaction.get("object_id"),
        )

    def build_track(self, tracking_number: str, carrier: str | None, creds: Credentials) -> VendorRequest:
        if not carrier:
            raise InvalidInputError(
                "shippo needs the carrier to track a number: pass --carrier (e.g. usps, ups, fedex)"
            )
        return self.request(
            "GET", f"/tracks/{quote(carrier.lower(), safe='')}/{quote(tracking_number, safe='')}", creds
        )

    def parse_track(self, response: httpx.Response) -> Tracking:
        return self.tracking(response.json())

    def tracking(self, track: Mapping[str, Any]) -> Tracking:
        events = tuple(_event(h) for h in track.get("tracking_history") or [] if isinstance(h, Mapping))
        current = track.get("tracking_status")
        status = _event(current).status if isinstance(current, Mapping) else TrackingStatus.UNKNOWN
        return Tracking(
            self.slug, track["tracking_number"], track.get("carrier"), status, events, utc_time(track.get("eta")), None
        )

    def build_refund(self, shipment_id: str, transaction_id: str | None, creds: Credentials) -> VendorRequest:
        if not transaction_id:
            raise InvalidInputError(f"no label bought for shipment {shipment_id}: shippo refunds a transaction")
        return self.request("POST", "/refunds", creds, json={"transaction": transaction_id, "async": False})

    def parse_refund(self, response: httpx.Response, shipment_id: str) -> Refund:
        body = response.json()
        return Refund(self.slug, shipment_id, str(body.get("status") or "unknown").lower(), body)

    def build_verify_address(self, address: Address, creds: Credentials) -> VendorRequest:
        return self.request("POST", "/addresses", creds, json={**address.to_dict(), "validate": True})

    def parse_verify_address(self, response: httpx.Response) -> AddressVerification:
        body = response.json()
        results = body.get("validation_results") or {}
        messages = tuple(
            str(m.get("text")) for m in results.get("messages") or [] if isinstance(m, Mapping) and m.get("text")
        )
        valid = bool(results.get("is_valid"))
        return AddressVerification(valid, Address.from_vendor(body) if valid else None, messages, self.slug)

    def tracking_from_webhook(self, payload: Any) -> Tracking | None:
        if not isinstance(payload, Mapping) or payload.get("event") != "track_updated":
            return None
        data = payload.get("data")
        return self.tracking(data) if isinstance(data, Mapping) and data.get("tracking_number") else None

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping) and "detail" not in body and body:
            # field errors: {"address_to": ["This field is required."], ...}
            return "; ".join(
                f"{field}: {' '.join(map(str, v)) if isinstance(v, list) else v}" for field, v in body.items()
            )
        return super().error_message(response, body)


def _parcel(parcel: Parcel) -> dict[str, str]:
    return {
        "length": str(parcel.length),
        "width": str(parcel.width),
        "height": str(parcel.height),
        "distance_unit": parcel.distance_unit.value,
        "weight": str(parcel.weight),
        "mass_unit": parcel.mass_unit.value,
    }


def _rate_id(transaction: Mapping[str, Any]) -> str | None:
    rate = transaction.get("rate")
    return rate.get("object_id") if isinstance(rate, Mapping) else rate


def _event(entry: Mapping[str, Any]) -> TrackingEvent:
    raw = str(entry.get("status") or "UNKNOWN")
    substatus: Mapping[str, Any] = entry["substatus"] if isinstance(entry.get("substatus"), Mapping) else {}
    status = _SUBSTATUSES.get(str(substatus.get("code"))) or _STATUSES.get(raw, TrackingStatus.UNKNOWN)
    return TrackingEvent(
        status, utc_time(entry.get("status_date")), place(entry.get("location")), entry.get("status_details"), raw
    )


VENDOR = Vendor(
    "shippo",
    "Shippo: rates, labels (transactions), tracks, refunds, addresses",
    {"shipping": ShippoShippingAdapter},
    VendorSettings,
    (AuthScheme(AuthMethod.API_KEY, ("api_key",), help="api_key: the API token (shippo_live_... or shippo_test_...)"),),
)
