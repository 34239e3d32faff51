"""A local EasyPost v2 API: shipments with rates, buy, label conversion, refunds, trackers, addresses.

Faithful to the documented contract where our adapter and the official SDK meet
it: ``Authorization: Bearer <key>`` (the SDK) or HTTP Basic with the key as
user name (the docs); JSON bodies wrapped in the object's name
(``{"shipment": {...}}``); parcels in ounces and inches; rates with the price
as a string; errors as ``{"error": {"code", "message", "errors": [...]}}`` with
401, 404, 422, 429, 500 and 503.  A shipment can be bought once: a second buy
is the vendor's 422 ``SHIPMENT.POSTAGE.EXISTS``.  ``lose_next_buy`` buys and
then drops the connection; ``stall_buys`` buys and then holds the answer back
(a caller killed meanwhile never hears of the label).
"""

from __future__ import annotations

import base64
import itertools
import threading
from decimal import Decimal
from typing import Any

from fake_vendor_http import LOST, FakeVendor, Recorded, Response, json_response

API_KEY = "EZTK_test_8d1f2c0a9b7e4d6f"
LABEL_BYTES = {"png": b"\x89PNG\r\n\x1a\n-fake-label-", "pdf": b"%PDF-1.4\n% fake label\n", "zpl": b"^XA^FO50,50^FDfake label^FS^XZ"}
SERVICES = (("USPS", "GroundAdvantage", Decimal("5.00"), Decimal("0.10"), 5), ("USPS", "Priority", Decimal("8.00"), Decimal("0.15"), 2),
            ("UPS", "Ground", Decimal("9.50"), Decimal("0.12"), 4))
# EasyPost test-mode tracking codes: EZ1... is pre_transit up to EZ7... unknown.
TEST_CODES = {"EZ1000000001": "pre_transit", "EZ2000000002": "in_transit", "EZ3000000003": "out_for_delivery",
              "EZ4000000004": "delivered", "EZ5000000005": "return_to_sender", "EZ6000000006": "failure", "EZ7000000007": "unknown"}
PROGRESS = ("pre_transit", "in_transit", "out_for_delivery", "delivered")
ADDRESS_REQUIRED = ("street1", "city", "zip", "country")


def _error(status: int, code: str, message: str, errors: list[Any] | None = None, **headers: str) -> Response:
    return json_response(status, {"error": {"code": code, "message": message, "errors": errors or []}}, **headers)


class FakeEasyPost(FakeVendor):
    def __init__(self) -> None:
        super().__init__()
        self.shipments: dict[str, dict[str, Any]] = {}
        self.buys: list[str] = []  # shipment ids, once per label actually bought
        self.lose_next_buy = False
        self.refuse_after_lost_buy = False  # the next request after a lost buy is refused (401): nobody can ask about it
        self.stall_buys = 0.0
        self.buy_started = threading.Event()
        self.tracking_script: dict[str, list[str]] = {}  # code -> statuses answered one poll after another
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):032x}"

    # -- contract ---------------------------------------------------------------
    def authenticate(self, req: Recorded) -> bool:
        if req.path.startswith("/labels/"):
            return True  # label files live on public storage
        header = req.headers.get("authorization", "")
        if header == f"Bearer {API_KEY}":
            return True
        if header.startswith("Basic "):
            user, _, _ = base64.b64decode(header[6:]).decode().partition(":")
            return user == API_KEY
        return False

    def error_response(self, kind: str, **options: Any) -> Response:
        if kind == "auth":
            return _error(401, "APIKEY.INACTIVE", "This api key is no longer active. Please use a different api key or reactivate this key.")
        if kind == "forbidden":
            return _error(403, "FORBIDDEN", "You do not have permission to access this resource.")
        if kind == "invalid":
            return _error(422, options.get("code", "PARAMETER.INVALID"), options.get("message", "Invalid parameters"), options.get("errors"))
        if kind == "rate_limited":
            headers = {"Retry-After": str(options["retry_after"])} if "retry_after" in options else {}
            return _error(429, "RATE_LIMITED", "You have exceeded the rate limit for this resource.", **headers)
        if kind == "unavailable":
            return _error(503, "SERVICE.UNAVAILABLE", "The service is temporarily unavailable.")
        return _error(500, "INTERNAL_SERVER_ERROR", "We're sorry, something went wrong.")

    def route(self, req: Recorded) -> Response | list[str]:
        parts = req.path.strip("/").split("/")
        if parts[0] == "labels":
            name = parts[-1]
            return 200, {"Content-Type": "application/octet-stream"}, LABEL_BYTES.get(name.rsplit(".", 1)[-1], b"")
        if parts[0] != "v2":
            return _error(404, "NOT_FOUND", "The requested resource could not be found.")
        parts = parts[1:]
        if req.method == "POST" and req.content_type != "application/json":
            return ["POST bodies are JSON"]
        match (req.method, parts):
            case ("POST", ["shipments"]):
                return self._create_shipment(req)
            case ("GET", ["shipments", sid]):
                return self._shipment(sid) or _error(404, "NOT_FOUND", "The requested resource could not be found.")
            case ("POST", ["shipments", sid, "buy"]):
                return self._buy(sid, req)
            case ("GET", ["shipments", sid, "label"]):
                return self._convert(sid, req)
            case ("POST", ["shipments", sid, "refund"]):
                return self._refund(sid)
            case ("POST", ["trackers"]):
                return self._tracker(req)
            case ("POST", ["addresses"]):
                return self._address(req)
            case ("GET", ["addresses"]):
                return json_response(200, {"addresses": [], "has_more": False})
        return _error(404, "NOT_FOUND", "The requested resource could not be found.")

    # -- resources --------------------------------------------------------------
    def _create_shipment(self, req: Recorded) -> Response | list[str]:
        body = req.json()
        if set(body) != {"shipment"}:
            return ["body must be {'shipment': {...}}"]
        shipment = body["shipment"]
        errors = []
        for side in ("to_address", "from_address"):
            address = shipment.get(side) or {}
            errors += [{"field": f"{side}.{f}", "message": "cannot be blank"} for f in ADDRESS_REQUIRED if not address.get(f)]
        parcel = shipment.get("parcel") or {}
        if not isinstance(parcel.get("weight"), (int, float)) or parcel["weight"] <= 0:
            errors.append({"field": "parcel.weight", "message": "must be greater than 0"})
        if errors:
            return _error(422, "SHIPMENT.INVALID_PARAMS", "Unable to create shipment, one or more parameters were invalid.", errors)
        sid = self._id("shp")
        ounces = Decimal(str(parcel["weight"]))
        rates = [{"id": self._id("rate"), "object": "Rate", "mode": "test", "service": service, "carrier": carrier,
                  "rate": str((base + per_oz * ounces).quantize(Decimal("0.01"))), "currency": "USD", "delivery_days": days,
                  "delivery_date": None, "delivery_date_guaranteed": False, "est_delivery_days": days, "shipment_id": sid,
                  "carrier_account_id": "ca_" + carrier.lower()} for carrier, service, base, per_oz, days in SERVICES]
        record = {"id": sid, "object": "Shipment", "mode": "test", "reference": shipment.get("reference"), "status": "unknown",
                  "to_address": {"object": "Address", **shipment["to_address"]}, "from_address": {"object": "Address", **shipment["from_address"]},
                  "parcel": {"object": "Parcel", "id": self._id("prcl"), **parcel}, "options": shipment.get("options") or {},
                  "rates": rates, "selected_rate": None, "postage_label": None, "tracking_code": None, "tracker": None,
                  "refund_status": None, "messages": []}
        with self._lock:
            self.shipments[sid] = record
        return json_response(201, record)

    def _shipment(self, sid: str) -> Response | None:
        with self._lock:
            record = self.shipments.get(sid)
        return json_response(200, record) if record else None

    def _buy(self, sid: str, req: Recorded) -> Response | list[str]:
        body = req.json()
        rate_id = (body.get("rate") or {}).get("id") if isinstance(body.get("rate"), dict) else None
        if not rate_id:
            return ["buy needs {'rate': {'id': 'rate_...'}}"]
        with self._lock:
            record = self.shipments.get(sid)
            if record is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            if record["postage_label"] is not None:
                return _error(422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment.")
            rate = next((r for r in record["rates"] if r["id"] == rate_id), None)
            if rate is None:
                return _error(422, "SHIPMENT.RATE.INVALID", "The rate is not valid for this shipment.")
            fmt = str(record["options"].get("label_format") or "PNG").lower()
            label_id = self._id("pl")
            record.update(
                selected_rate=rate, status="unknown", tracking_code=f"9400{next(self._ids):018d}",
                postage_label={"object": "PostageLabel", "id": label_id, "label_file_type": "image/png" if fmt == "png" else f"application/{fmt}",
                               "label_url": f"{self.url}/labels/{label_id}.{fmt}", "label_pdf_url": None, "label_zpl_url": None},
            )
            record["tracker"] = {"object": "Tracker", "id": self._id("trk"), "tracking_code": record["tracking_code"], "status": "pre_transit"}
            self.buys.append(sid)
            lose, stall = self.lose_next_buy, self.stall_buys
            self.lose_next_buy = False
        self.buy_started.set()
        if lose and self.refuse_after_lost_buy:
            self.fail_next("auth")
        if stall:
            self._stop.wait(stall)
        return LOST if lose else json_response(200, record)

    def _convert(self, sid: str, req: Recorded) -> Response | list[str]:
        fmt = (req.query.get("file_format") or [""])[0].lower()
        if fmt not in ("pdf", "zpl", "png"):
            return ["file_format must be PDF, ZPL or PNG"]
        with self._lock:
            record = self.shipments.get(sid)
            if record is None or record["postage_label"] is None:
                return _error(422, "SHIPMENT.POSTAGE.REQUIRED", "This shipment has no postage label.")
            label = record["postage_label"]
            if fmt != "png":
                label[f"label_{fmt}_url"] = f"{self.url}/labels/{label['id']}.{fmt}"
        return json_response(200, record)

    def _refund(self, sid: str) -> Response:
        with self._lock:
            record = self.shipments.get(sid)
            if record is None:
                return _error(404, "NOT_FOUND", "The requested resource could not be found.")
            if record["postage_label"] is None:
                return _error(422, "SHIPMENT.REFUND.UNAVAILABLE", "This shipment has no postage to refund.")
            if record["refund_status"] is not None:
                return _error(422, "SHIPMENT.REFUND.EXISTS", "A refund has already been requested for this shipment.")
            record["refund_status"] = "submitted"
        return json_response(200, record)

    def _tracker(self, req: Recorded) -> Response | list[str]:
        body = req.json()
        tracker = body.get("tracker") if set(body) == {"tracker"} else None
        if not isinstance(tracker, dict) or not tracker.get("tracking_code"):
            return ["body must be {'tracker': {'tracking_code': ..., 'carrier'?: ...}}"]
        code = tracker["tracking_code"]
        script = self.tracking_script.get(code)
        if script:
            status = script.pop(0) if len(script) > 1 else script[0]
            return json_response(201, tracker_body(code, tracker.get("carrier") or "USPS", status, self._id("trk")))
        status = TEST_CODES.get(code) or ("pre_transit" if any(s["tracking_code"] == code for s in self.shipments.values()) else None)
        if status is None:
            return _error(422, "TRACKER.TRACKING_CODE.INVALID", "The tracking code is not valid for this carrier.")
        return json_response(201, tracker_body(code, tracker.get("carrier") or "USPS", status, self._id("trk")))

    def _address(self, req: Recorded) -> Response | list[str]:
        body = req.json()
        address = body.get("address")
        if not isinstance(address, dict):
            return ["body must be {'address': {...}, 'verify': true}"]
        record: dict[str, Any] = {"id": self._id("adr"), "object": "Address", **address}
        if body.get("verify"):
            bad = "UNDELIVERABLE" in str(address.get("street1", "")).upper()
            errors = [{"code": "E.ADDRESS.NOT_FOUND", "field": "address", "message": "Address not found", "suggestion": None}] if bad else []
            record["verifications"] = {"delivery": {"success": not bad, "errors": errors, "details": {}}}
            if not bad:
                record.update(street1=str(address.get("street1", "")).upper(), city=str(address.get("city", "")).upper())
        return json_response(201, record)


def tracker_body(code: str, carrier: str, status: str, tracker_id: str) -> dict[str, Any]:
    """A Tracker whose history walks the usual path up to ``status`` (one detail per step, an hour apart)."""
    if status in PROGRESS:
        steps = list(PROGRESS[: PROGRESS.index(status) + 1])
    else:
        steps = [status] if status == "unknown" else ["pre_transit", "in_transit", status]
    details = [{"object": "TrackingDetail", "status": step, "status_detail": "status_update", "message": f"{step.replace('_', ' ').title()} at facility",
                "description": "", "datetime": f"2026-12-0{1 + i // 24}T{i % 24:02d}:00:00Z", "source": carrier,
                "tracking_location": {"object": "TrackingLocation", "city": "SAN FRANCISCO", "state": "CA", "country": "US", "zip": "94107"}}
               for i, step in enumerate(steps)]
    return {"id": tracker_id, "object": "Tracker", "mode": "test", "tracking_code": code, "status": status, "status_detail": "status_update",
            "carrier": carrier, "est_delivery_date": "2026-12-04T00:00:00Z", "tracking_details": details, "shipment_id": None,
            "public_url": f"https://track.easypost.com/{tracker_id}"}
