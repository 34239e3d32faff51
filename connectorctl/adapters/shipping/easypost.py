"""EasyPost v2: shipments with rates, buy, label conversion, refunds, trackers, address verification.

Contract: JSON bodies wrapped in the object's name (``{"shipment": {...}}``),
parcels in ounces and inches, rates with the price as a string, errors as
``{"error": {"code", "message", "errors": [...]}}``.  Auth is
``Authorization: Bearer <key>``, what the official SDK sends (EasyPost also
takes HTTP Basic with the key as user name).  A label's format is fixed at
purchase (PNG unless the shipment asked otherwise); PDF and ZPL come from
``GET /v2/shipments/{id}/label?file_format=``.  A shipment is bought at most
once: its ``postage_label`` says whether it was.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Mapping

import httpx

from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.shipping.base import ShippingAdapter
from connectorctl.domain.money import Money
from connectorctl.domain.shipping import (
    Address,
    AddressVerification,
    DistanceUnit,
    Label,
    LabelFormat,
    MassUnit,
    Rate,
    Refund,
    Shipment,
    Tracking,
    TrackingEvent,
    TrackingStatus,
    place,
    utc_time,
)
from connectorctl.domain.values import Credentials
from connectorctl.settings import VendorSettings

STATUSES = {s.value: s for s in TrackingStatus} | {"cancelled": TrackingStatus.FAILURE, "error": TrackingStatus.UNKNOWN}
_FILE_TYPES = {"image/png": LabelFormat.PNG, "application/pdf": LabelFormat.PDF, "application/zpl": LabelFormat.ZPL}


class EasyPostShippingAdapter(ShippingAdapter[VendorSettings]):
    default_base_url = "https://api.easypost.com"
    api_prefix = "/v2"
    converts_labels = True

    def auth_headers(self, creds: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {creds.data['api_key']}", "Accept": "application/json"}

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return self.request("GET", "/addresses", creds, params={"page_size": 1})

    def build_rates(self, shipment: Shipment, creds: Credentials) -> VendorRequest:
        body: dict[str, Any] = {
            "to_address": shipment.to_address.to_dict(),
            "from_address": shipment.from_address.to_dict(),
            "parcel": _parcel(shipment),
        }
        if shipment.reference:
            body["reference"] = shipment.reference
        return self.request("POST", "/shipments", creds, json={"shipment": body})

    def parse_rates(self, response: httpx.Response) -> tuple[str, list[Rate]]:
        shipment = response.json()
        return shipment["id"], [self._rate(r) for r in shipment.get("rates") or []]

    def _rate(self, r: Mapping[str, Any]) -> Rate:
        return Rate(
            r["id"],
            self.slug,
            r["shipment_id"],
            r["carrier"],
            r["service"],
            Money.of(r["rate"], r["currency"]),
            r.get("delivery_days") or r.get("est_delivery_days"),
            r.get("delivery_date"),
        )

    def build_buy(self, rate: Rate, label_format: LabelFormat, creds: Credentials) -> VendorRequest:
        return self.request("POST", f"/shipments/{rate.shipment_id}/buy", creds, json={"rate": {"id": rate.id}})

    def parse_buy(self, response: httpx.Response, rate: Rate, label_format: LabelFormat) -> Label:
        label = self._label(response.json())
        if label is None:
            raise ValueError("a bought shipment without postage_label")
        return label

    def build_purchase_lookup(self, rate: Rate, creds: Credentials) -> VendorRequest:
        return self.request("GET", f"/shipments/{rate.shipment_id}", creds)

    def parse_purchase_lookup(self, response: httpx.Response, rate: Rate, label_format: LabelFormat) -> Label | None:
        return self._label(response.json())

    def build_label_conversion(self, label: Label, label_format: LabelFormat, creds: Credentials) -> VendorRequest:
        return self.request(
            "GET", f"/shipments/{label.shipment_id}/label", creds, params={"file_format": label_format.value.upper()}
        )

    def parse_label_conversion(self, response: httpx.Response, label: Label, label_format: LabelFormat) -> Label:
        from dataclasses import replace

        postage = response.json()["postage_label"]
        url = postage.get(f"label_{label_format.value}_url") or (
            postage["label_url"] if label_format is LabelFormat.PNG else None
        )
        if not url:
            raise ValueError(f"no {label_format.value} label in the answer")
        return replace(label, label_format=label_format, label_url=url)

    def _label(self, shipment: Mapping[str, Any]) -> Label | None:
        postage = shipment.get("postage_label")
        if not postage:
            return None
        selected = shipment.get("selected_rate") or {}
        fmt = _FILE_TYPES.get(str(postage.get("label_file_type")), LabelFormat.PNG)
        price = Money.of(selected["rate"], selected["currency"]) if selected.get("rate") else None
        return Label(
            self.slug,
            shipment["id"],
            selected.get("id", ""),
            shipment.get("tracking_code") or "",
            selected.get("carrier", ""),
            selected.get("service", ""),
            price,
            fmt,
            postage.get("label_url"),
        )

    def build_track(self, tracking_number: str, carrier: str | None, creds: Credentials) -> VendorRequest:
        tracker = {"tracking_code": tracking_number, **({"carrier": carrier} if carrier else {})}
        return self.request("POST", "/trackers", creds, json={"tracker": tracker})

    def parse_track(self, response: httpx.Response) -> Tracking:
        return self.tracking(response.json())

    def tracking(self, tracker: Mapping[str, Any]) -> Tracking:
        events = tuple(
            TrackingEvent(
                STATUSES.get(str(d.get("status")), TrackingStatus.UNKNOWN),
                utc_time(d.get("datetime")),
                place(d.get("tracking_location")),
                d.get("message"),
                d.get("status"),
            )
            for d in tracker.get("tracking_details") or []
        )
        return Tracking(
            self.slug,
            tracker["tracking_code"],
            tracker.get("carrier"),
            STATUSES.get(str(tracker.get("status")), TrackingStatus.UNKNOWN),
            events,
            utc_time(tracker.get("est_delivery_date")),
            tracker.get("shipment_id"),
        )

    def build_refund(self, shipment_id: str, transaction_id: str | None, creds: Credentials) -> VendorRequest:
        return self.request("POST", f"/shipments/{shipment_id}/refund", creds, json={})

    def parse_refund(self, response: httpx.Response, shipment_id: str) -> Refund:
        body = response.json()
        return Refund(self.slug, body.get("id") or shipment_id, str(body.get("refund_status") or "unknown"), body)

    def build_verify_address(self, address: Address, creds: Credentials) -> VendorRequest:
        return self.request("POST", "/addresses", creds, json={"address": address.to_dict(), "verify": True})

    def parse_verify_address(self, response: httpx.Response) -> AddressVerification:
        body = response.json()
        delivery = (body.get("verifications") or {}).get("delivery") or {}
        messages = tuple(str(e.get("message")) for e in delivery.get("errors") or [] if isinstance(e, Mapping))
        ok = bool(delivery.get("success"))
        return AddressVerification(ok, Address.from_vendor(body) if ok else None, messages, self.slug)

    def tracking_from_webhook(self, payload: Any) -> Tracking | None:
        if not isinstance(payload, Mapping) or payload.get("description") not in ("tracker.updated", "tracker.created"):
            return None
        result = payload.get("result")
        return self.tracking(result) if isinstance(result, Mapping) and result.get("tracking_code") else None

    def error_message(self, response: httpx.Response, body: Any) -> str:
        text = super().error_message(response, body)
        error = body.get("error") if isinstance(body, Mapping) else None
        if isinstance(error, Mapping):
            fields = [
                f"{e.get('field')}: {e.get('message')}" if isinstance(e, Mapping) else str(e)
                for e in error.get("errors") or []
            ]
            code = f" ({error.get('code')})" if error.get("code") else ""
            return text + code + (" - " + "; ".join(fields) if fields else "")
        return text


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _parcel(shipment: Shipment) -> dict[str, int | float]:
    parcel = shipment.parcels[0]
    length, width, height = parcel.dimensions_in(DistanceUnit.IN)
    return {
        "length": _number(length),
        "width": _number(width),
        "height": _number(height),
        "weight": _number(parcel.weight_in(MassUnit.OZ)),
    }


VENDOR = Vendor(
    "easypost",
    "EasyPost v2: rates, labels, trackers, refunds, addresses",
    {"shipping": EasyPostShippingAdapter},
    VendorSettings,
    (API_KEY,),
)
