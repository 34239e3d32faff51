"""A local Shippo API: shipments with rates, transactions (labels), tracks, refunds, addresses.

Faithful to the documented contract: ``Authorization: ShippoToken <token>``;
JSON bodies; parcels with their own units as strings; 32-hex ``object_id``s;
``async: false`` answers at once.  ``lose_next_buy`` buys and drops the
connection; ``stall_buys`` buys and holds the answer back.  Errors follow Shippo's REST framework
shapes: 400 ``{"<field>": ["message"]}`` for validation, 401/429/5xx
``{"detail": "..."}`` (429 with ``Retry-After``).  A failed purchase is
HTTP 201 with ``status: "ERROR"`` and ``messages``.  Shippo does not refuse a
second transaction for the same rate, so this fake sells it again: only our
own bookkeeping stands between a retry and a second label.
"""

from __future__ import annotations

import itertools
import threading
from decimal import Decimal
from typing import Any

from fake_vendor_http import LOST, FakeVendor, Recorded, Response, json_response

TOKEN = "shippo_test_5f1e2d3c4b5a69788796a5b4c3d2e1f0"
LABEL_BYTES = {"png": b"\x89PNG\r\n\x1a\n-shippo-label-", "pdf": b"%PDF-1.4\n% shippo label\n", "zpl": b"^XA^FDshippo label^FS^XZ"}
FILE_TYPES = {"PNG": "png", "PDF": "pdf", "PDF_4x6": "pdf", "PDF_A4": "pdf", "ZPLII": "zpl"}
SERVICES = (("USPS", "Ground Advantage", "usps_ground_advantage", Decimal("4.80"), 5), ("USPS", "Priority Mail", "usps_priority", Decimal("7.90"), 2),
            ("UPS", "Ground", "ups_ground", Decimal("9.20"), 4))
TEST_TRACKING = {"SHIPPO_PRE_TRANSIT": "PRE_TRANSIT", "SHIPPO_TRANSIT": "TRANSIT", "SHIPPO_DELIVERED": "DELIVERED",
                 "SHIPPO_RETURNED": "RETURNED", "SHIPPO_FAILURE": "FAILURE", "SHIPPO_UNKNOWN": "UNKNOWN"}
STAMP = "2026-12-01T09:00:00Z"
OWNER = "shop@example.com"


def _detail(status: int, detail: str, **headers: str) -> Response:
    return json_response(status, {"detail": detail}, **headers)


class FakeShippo(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self.shipments: dict[str, dict[str, Any]] = {}
        self.rates: dict[str, dict[str, Any]] = {}
        self.transactions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.lose_next_buy = False
        self.stall_buys = 0.0
        self.fail_next_buy: str | None = None  # a carrier refusal: HTTP 201 with status ERROR
        self._ids = itertools.count(1)
        self.buy_started = threading.Event()

    def _id(self) -> str:
        return f"{next(self._ids):032x}"

    @property
    def buys(self) -> list[str]:
        return [t["rate"] for t in self.transactions.values() if t["status"] == "SUCCESS"]

    def authenticate(self, req: Recorded) -> bool:
        return req.path.startswith("/labels/") or req.headers.get("authorization") == f"ShippoToken {TOKEN}"

    def error_response(self, kind: str, **options: Any) -> Response:
        if kind == "auth":
            return _detail(401, "Invalid token.")
        if kind == "forbidden":
            return _detail(403, "You do not have permission to perform this action.")
        if kind == "invalid":
            return json_response(400, options.get("errors") or {"non_field_errors": [options.get("message", "Invalid request.")]})
        if kind == "rate_limited":
            wait = str(options.get("retry_after", 1))
            return _detail(429, f"Request was throttled. Expected available in {wait} seconds.", **{"Retry-After": wait})
        if kind == "unavailable":
            return _detail(503, "Service temporarily unavailable, try again later.")
        return _detail(500, "A server error occurred.")

    def route(self, req: Recorded) -> Response | list[str]:
        parts = req.path.strip("/").split("/")
        if parts[0] == "labels":
            return 200, {"Content-Type": "application/octet-stream"}, LABEL_BYTES.get(parts[-1].rsplit(".", 1)[-1], b"")
        if req.method == "POST" and req.content_type != "application/json":
            return ["POST bodies are JSON"]
        match (req.method, parts):
            case ("POST", ["shipments"]):
                return self._create_shipment(req.json())
            case ("POST", ["transactions"]):
                return self._transaction(req.json())
            case ("GET", ["transactions"]):
                rate = (req.query.get("rate") or [None])[0]
                found = [t for t in self.transactions.values() if rate is None or t["rate"] == rate]
                return json_response(200, {"next": None, "previous": None, "results": found})
            case ("GET", ["tracks", carrier, number]):
                return self._track(carrier, number)
            case ("POST", ["refunds"]):
                return self._refund(req.json())
            case ("POST", ["addresses"]):
                return self._address(req.json())
            case ("GET", ["addresses"]):
                return json_response(200, {"next": None, "previous": None, "results": []})
        return _detail(404, "Not found.")

    def _create_shipment(self, body: dict[str, Any]) -> Response | list[str]:
        errors: dict[str, list[str]] = {}
        for side in ("address_from", "address_to"):
            address = body.get(side)
            if not isinstance(address, dict):
                errors[side] = ["This field is required."]
                continue
            missing = [f for f in ("street1", "city", "zip", "country") if not address.get(f)]
            if missing:
                errors[side] = [f"{f}: This field may not be blank." for f in missing]
        parcels = body.get("parcels")
        if not isinstance(parcels, list) or not parcels:
            errors["parcels"] = ["This field is required."]
        else:
            for p in parcels:
                if any(not isinstance(p.get(f), str) for f in ("length", "width", "height", "weight", "distance_unit", "mass_unit")):
                    errors["parcels"] = ["length, width, height, weight, distance_unit and mass_unit are required strings."]
        if errors:
            return json_response(400, errors)
        sid = self._id()
        weight = sum(Decimal(p["weight"]) for p in parcels)
        rates = []
        for provider, name, token, base, days in SERVICES:
            rid = self._id()
            amount = str((base + Decimal("0.25") * weight).quantize(Decimal("0.01")))
            rate = {"object_id": rid, "object_created": STAMP, "object_owner": OWNER, "shipment": sid, "attributes": [], "amount": amount,
                    "currency": "USD", "amount_local": amount, "currency_local": "USD", "provider": provider,
                    "servicelevel": {"name": name, "token": token, "terms": ""}, "estimated_days": days, "arrives_by": None,
                    "duration_terms": f"Delivery in {days} days.", "carrier_account": "ca" + token, "test": True, "zone": "1", "messages": []}
            rates.append(rate)
            self.rates[rid] = rate
        shipment = {"object_id": sid, "object_created": STAMP, "object_updated": STAMP, "object_owner": OWNER, "status": "SUCCESS",
                    "metadata": body.get("metadata") or "", "address_from": {"is_complete": True, **body["address_from"]},
                    "address_to": {"is_complete": True, **body["address_to"]}, "parcels": parcels, "carrier_accounts": [],
                    "rates": rates, "messages": [], "test": True}
        with self._lock:
            self.shipments[sid] = shipment
        return json_response(201, shipment)

    def _transaction(self, body: dict[str, Any]) -> Response | list[str]:
        rate_id = body.get("rate")
        if not isinstance(rate_id, str):
            return json_response(400, {"rate": ["This field is required."]})
        rate = self.rates.get(rate_id)
        if rate is None:
            return json_response(400, {"rate": [f"Rate with object_id {rate_id} does not exist."]})
        file_type = body.get("label_file_type") or "PDF"
        if file_type not in FILE_TYPES:
            return json_response(400, {"label_file_type": [f'"{file_type}" is not a valid choice.']})
        tid = self._id()
        with self._lock:
            refusal, self.fail_next_buy = self.fail_next_buy, None
            lose, self.lose_next_buy = self.lose_next_buy, False
            stall = self.stall_buys
            transaction: dict[str, Any] = {
                "object_id": tid, "object_state": "VALID", "object_created": STAMP, "object_updated": STAMP, "object_owner": OWNER,
                "rate": rate_id, "metadata": body.get("metadata") or "", "label_file_type": file_type, "test": True, "messages": [],
                "status": "ERROR" if refusal else "SUCCESS", "tracking_status": "UNKNOWN" if refusal else "PRE_TRANSIT",
                "tracking_number": "" if refusal else f"92{next(self._ids):020d}", "eta": None,
                "label_url": "" if refusal else f"{self.url}/labels/{tid}.{FILE_TYPES[file_type]}",
                "tracking_url_provider": "", "commercial_invoice_url": None, "parcel": None,
                "created_by": {"first_name": "Shop", "last_name": "Owner", "username": OWNER},
            }
            if refusal:
                transaction["messages"] = [{"source": rate["provider"], "code": "carrier_error", "text": refusal}]
            self.transactions[tid] = transaction
        self.buy_started.set()
        if stall:
            self._stop.wait(stall)
        return LOST if lose else json_response(201, transaction)

    def _track(self, carrier: str, number: str) -> Response:
        status = TEST_TRACKING.get(number) if carrier == "shippo" else None
        if status is None:
            bought = next((t for t in self.transactions.values() if t["tracking_number"] == number), None)
            status = "PRE_TRANSIT" if bought else None
        if status is None:
            return _detail(404, "Not found.")
        return json_response(200, track_body(carrier, number, status))

    def _refund(self, body: dict[str, Any]) -> Response:
        tid = body.get("transaction")
        transaction = self.transactions.get(tid) if isinstance(tid, str) else None
        if transaction is None or transaction["status"] != "SUCCESS":
            return json_response(400, {"transaction": ["Transaction does not exist or has no label."]})
        if any(r["transaction"] == tid for r in self.refunds.values()):
            return json_response(400, {"transaction": ["A refund for this transaction already exists."]})
        refund = {"object_id": self._id(), "object_created": STAMP, "object_updated": STAMP, "object_owner": OWNER,
                  "status": "QUEUED", "transaction": tid, "test": True}
        self.refunds[refund["object_id"]] = refund
        return json_response(201, refund)

    def _address(self, body: dict[str, Any]) -> Response:
        if not body.get("country"):
            return json_response(400, {"country": ["This field is required."]})
        bad = "UNDELIVERABLE" in str(body.get("street1", "")).upper()
        address = {k: v for k, v in body.items() if k != "validate"}
        address.update(object_id=self._id(), is_complete=not bad, test=True)
        if body.get("validate"):
            messages = [{"source": "Shippo Address Validator", "code": "Unknown Street", "type": "address_error",
                         "text": "The address as submitted could not be found."}] if bad else []
            address["validation_results"] = {"is_valid": not bad, "messages": messages}
        return json_response(201, address)


def track_body(carrier: str, number: str, status: str) -> dict[str, Any]:
    """A Track whose history walks PRE_TRANSIT -> TRANSIT (out for delivery) -> ``status``."""
    path = {"PRE_TRANSIT": ["PRE_TRANSIT"], "TRANSIT": ["PRE_TRANSIT", "TRANSIT"], "DELIVERED": ["PRE_TRANSIT", "TRANSIT", "TRANSIT", "DELIVERED"],
            "RETURNED": ["PRE_TRANSIT", "TRANSIT", "RETURNED"], "FAILURE": ["PRE_TRANSIT", "TRANSIT", "FAILURE"], "UNKNOWN": ["UNKNOWN"]}[status]
    history = []
    for i, step in enumerate(path):
        out_for_delivery = step == "TRANSIT" and i == 2
        history.append({
            "object_created": STAMP, "object_updated": STAMP, "object_id": f"{i + 1:032x}", "status": step,
            "status_details": "Out for delivery." if out_for_delivery else f"{step.replace('_', ' ').title()} scan.",
            "status_date": f"2026-12-02T{10 + i:02d}:00:00Z", "location": {"city": "San Francisco", "state": "CA", "zip": "94117", "country": "US"},
            "substatus": {"code": "out_for_delivery", "text": "Out for delivery", "action_required": False} if out_for_delivery else None,
        })
    return {"carrier": carrier, "tracking_number": number, "eta": "2026-12-04T00:00:00Z", "original_eta": None, "servicelevel": None,
            "metadata": None, "messages": [], "transaction": None, "tracking_status": history[-1], "tracking_history": history,
            "address_from": None, "address_to": None}
