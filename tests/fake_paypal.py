"""A local PayPal REST API (OAuth2, Orders v2, Payments v2) faithful to the documented contract.

- ``POST /v1/oauth2/token``: Basic ``client_id:client_secret``, ``grant_type=client_credentials``
  -> ``{access_token, token_type: Bearer, expires_in}``; every other call needs that Bearer
  token (401 ``invalid_token`` once :meth:`expire_tokens` ran).
- ``POST /v2/checkout/orders`` (JSON): ``intent`` CAPTURE or AUTHORIZE, one purchase unit
  with ``amount {currency_code, value}`` (value with exactly the currency's decimals),
  ``custom_id``; with ``payment_source.card.vault_id`` the order completes at once
  (``vault_declined`` -> 422 ``INSTRUMENT_DECLINED``), without one it waits for the payer.
- ``PayPal-Request-Id``: the same id with the same body returns the stored answer; with
  another body a 422 ``PAYPAL_REQUEST_ID_PREVIOUSLY_USED``.
- ``POST /v2/payments/authorizations/{id}/capture|void``, ``/v2/payments/captures/{id}/refund``,
  ``GET /v2/checkout/orders/{id}``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import urllib.parse
from decimal import Decimal
from typing import Any

from tests.fake_payment_server import PaymentFake, Response, Seen, json_response

CLIENT_ID = "AeFakeClientId0001"
CLIENT_SECRET = "EFakeClientSecret-abcdef123456"
ZERO_DECIMAL = {"JPY", "HUF", "TWD"}
SUPPORTED = {"AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD", "NZD", "NOK",
             "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD"}
_ORDER = re.compile(r"^/v2/checkout/orders/([A-Z0-9]+)$")
_AUTH = re.compile(r"^/v2/payments/authorizations/([A-Z0-9]+)/(capture|void)$")
_REFUND = re.compile(r"^/v2/payments/captures/([A-Z0-9]+)/refund$")


def _issue(status: int, name: str, issue: str, description: str) -> Response:
    return json_response(status, {"name": name, "message": description, "debug_id": "fakedebug1",
                                  "details": [{"issue": issue, "description": description}]})


class FakePayPal(PaymentFake):
    unscripted = ("/v1/oauth2/token",)

    def __init__(self, *, drop_rate: float = 0.0, seed: int = 1, answer_delay: float = 0.0, token_lifetime: int = 32400) -> None:
        super().__init__(drop_rate=drop_rate, seed=seed, answer_delay=answer_delay)
        self.tokens: set[str] = set()
        self.token_lifetime = token_lifetime
        self.token_requests = 0
        self.orders: dict[str, dict[str, Any]] = {}
        self.authorizations: dict[str, str] = {}  # authorization id -> order id
        self.captures: dict[str, str] = {}  # capture id -> order id
        self.request_ids: dict[str, tuple[str, Response]] = {}
        self._ids = itertools.count(1)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def fault_body(self, status: int) -> Any:
        name = "RATE_LIMIT_REACHED" if status == 429 else "INTERNAL_SERVER_ERROR"
        return {"name": name, "message": f"fake PayPal answered {status}", "debug_id": "fakedebug0"}

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):014d}"

    def handle(self, req: Seen) -> Response:
        if req.path == "/v1/oauth2/token":
            return self._token(req)
        auth = req.header("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return json_response(401, {"error": "invalid_token", "error_description": "Token signature verification failed"})
        if req.method == "GET":
            match = _ORDER.match(req.path)
            if match and match.group(1) in self.orders:
                return json_response(200, self.orders[match.group(1)])
            return _issue(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        if req.method != "POST":
            return json_response(405, {"name": "METHOD_NOT_SUPPORTED", "message": "method not allowed"})
        if req.body and not (req.header("Content-Type") or "").startswith("application/json"):
            return _issue(415, "UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_MEDIA_TYPE", "expected application/json")
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            return _issue(400, "INVALID_REQUEST", "MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
        request_id = req.header("PayPal-Request-Id")
        digest = hashlib.sha256(json.dumps([req.path, body], sort_keys=True).encode()).hexdigest()
        if request_id:
            if len(request_id) > 108:
                return _issue(400, "INVALID_REQUEST", "INVALID_PARAMETER_SYNTAX", "PayPal-Request-Id is longer than 108 characters")
            stored = self.request_ids.get(request_id)
            if stored is not None:
                if stored[0] != digest:
                    return _issue(422, "UNPROCESSABLE_ENTITY", "PAYPAL_REQUEST_ID_PREVIOUSLY_USED",
                                  "The PayPal-Request-Id has already been used for another request.")
                status, headers, payload = stored[1]
                return (200 if status == 201 else status), headers, payload
        response, keep = self._write(req.path, body)
        if request_id and keep:
            self.request_ids[request_id] = (digest, response)
        return response

    def _token(self, req: Seen) -> Response:
        auth = req.header("Authorization") or ""
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = urllib.parse.parse_qs(req.body.decode())
        if auth != expected:
            return json_response(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if form.get("grant_type") != ["client_credentials"]:
            return json_response(400, {"error": "unsupported_grant_type", "error_description": "grant_type is required"})
        token = f"A21AA{next(self._ids):020d}"
        self.tokens.add(token)
        self.token_requests += 1
        return json_response(200, {"scope": "https://uri.paypal.com/services/payments/payment", "access_token": token,
                                   "token_type": "Bearer", "app_id": "APP-FAKE", "expires_in": self.token_lifetime, "nonce": "fake"})

    # -- writes ------------------------------------------------------------------------
    def _write(self, path: str, body: dict[str, Any]) -> tuple[Response, bool]:
        if path == "/v2/checkout/orders":
            return self._create(body)
        match = _AUTH.match(path)
        if match:
            order = self.orders.get(self.authorizations.get(match.group(1), ""))
            if order is None:
                return _issue(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist."), False
            return self._capture(order, body) if match.group(2) == "capture" else self._void(order)
        match = _REFUND.match(path)
        if match:
            order = self.orders.get(self.captures.get(match.group(1), ""))
            if order is None:
                return _issue(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "Specified resource ID does not exist."), False
            return self._refund(order, match.group(1), body)
        return _issue(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", f"no route for {path}"), False

    def _amount_error(self, amount: Any) -> Response | None:
        if not isinstance(amount, dict) or "currency_code" not in amount or "value" not in amount:
            return _issue(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "amount needs currency_code and value")
        if amount["currency_code"] not in SUPPORTED:
            return _issue(422, "UNPROCESSABLE_ENTITY", "CURRENCY_NOT_SUPPORTED", "Currency code is not supported.")
        places = 0 if amount["currency_code"] in ZERO_DECIMAL else 2
        if not re.fullmatch(r"[0-9]+" + (r"\.[0-9]{%d}" % places if places else ""), str(amount["value"])):
            return _issue(422, "UNPROCESSABLE_ENTITY", "DECIMAL_PRECISION", "The value of the field should not be more than two decimals.")
        return None

    def _create(self, body: dict[str, Any]) -> tuple[Response, bool]:
        intent = body.get("intent")
        units = body.get("purchase_units")
        if intent not in ("CAPTURE", "AUTHORIZE") or not isinstance(units, list) or len(units) != 1:
            return _issue(400, "INVALID_REQUEST", "MISSING_REQUIRED_PARAMETER", "intent and one purchase_unit are required"), False
        unit = units[0]
        error = self._amount_error(unit.get("amount"))
        if error:
            return error, False
        if len(str(unit.get("custom_id", ""))) > 127:
            return _issue(400, "INVALID_REQUEST", "INVALID_STRING_MAX_LENGTH", "custom_id is too long"), False
        vault = ((body.get("payment_source") or {}).get("card") or {}).get("vault_id")
        order = {"id": self._id("5O"), "intent": intent, "status": "PAYER_ACTION_REQUIRED",
                 "purchase_units": [{"reference_id": unit.get("reference_id", "default"), "custom_id": unit.get("custom_id"),
                                     "amount": unit["amount"], "payments": {}}],
                 "links": []}
        if vault is None:
            order["links"] = [{"href": f"https://www.paypal.com/checkoutnow?token={order['id']}", "rel": "payer-action", "method": "GET"}]
            self.orders[order["id"]] = order
            return json_response(201, order), True
        if vault == "vault_declined":
            return _issue(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED", "The instrument presented was either declined by the processor or bank."), True
        order["status"] = "COMPLETED"
        payments = order["purchase_units"][0]["payments"]
        if intent == "CAPTURE":
            capture = {"id": self._id("3C"), "status": "COMPLETED", "amount": unit["amount"], "final_capture": True}
            payments["captures"] = [capture]
            self.captures[capture["id"]] = order["id"]
        else:
            auth = {"id": self._id("0A"), "status": "CREATED", "amount": unit["amount"]}
            payments["authorizations"] = [auth]
            self.authorizations[auth["id"]] = order["id"]
        self.orders[order["id"]] = order
        return json_response(201, order), True

    def _capture(self, order: dict[str, Any], body: dict[str, Any]) -> tuple[Response, bool]:
        payments = order["purchase_units"][0]["payments"]
        auth = payments["authorizations"][0]
        if auth["status"] != "CREATED":
            return _issue(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_ALREADY_CAPTURED" if auth["status"] == "CAPTURED" else "AUTHORIZATION_VOIDED",
                          f"Authorization is {auth['status']}."), False
        amount = body.get("amount") or auth["amount"]
        error = self._amount_error(amount)
        if error:
            return error, False
        if Decimal(amount["value"]) > Decimal(auth["amount"]["value"]):
            return _issue(422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED", "Capture amount exceeds the authorized amount."), False
        capture = {"id": self._id("3C"), "status": "COMPLETED", "amount": amount, "final_capture": True}
        auth["status"] = "CAPTURED"
        payments["captures"] = [capture]
        self.captures[capture["id"]] = order["id"]
        return json_response(201, capture), True

    def _void(self, order: dict[str, Any]) -> tuple[Response, bool]:
        auth = order["purchase_units"][0]["payments"]["authorizations"][0]
        if auth["status"] != "CREATED":
            return _issue(422, "UNPROCESSABLE_ENTITY", "CANNOT_BE_VOIDED", f"Authorization is {auth['status']}."), False
        auth["status"] = "VOIDED"
        order["status"] = "VOIDED"
        return (204, {}, b""), True

    def _refund(self, order: dict[str, Any], capture_id: str, body: dict[str, Any]) -> tuple[Response, bool]:
        payments = order["purchase_units"][0]["payments"]
        capture = next(c for c in payments["captures"] if c["id"] == capture_id)
        refunded = sum(Decimal(r["amount"]["value"]) for r in payments.get("refunds", []))
        left = Decimal(capture["amount"]["value"]) - refunded
        amount = body.get("amount") or {"currency_code": capture["amount"]["currency_code"], "value": str(left)}
        error = self._amount_error(amount)
        if error:
            return error, False
        if left <= 0:
            return _issue(422, "UNPROCESSABLE_ENTITY", "CAPTURE_FULLY_REFUNDED", "The capture has already been fully refunded."), False
        if Decimal(amount["value"]) > left:
            return _issue(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED", "The refund amount must be less than or equal to the capture amount that has not yet been refunded."), False
        refund = {"id": self._id("1R"), "status": "COMPLETED", "amount": amount, "note_to_payer": body.get("note_to_payer")}
        payments.setdefault("refunds", []).append(refund)
        capture["status"] = "REFUNDED" if Decimal(amount["value"]) == left else "PARTIALLY_REFUNDED"
        return json_response(201, refund), True

    def completed_by_custom_id(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for order in self.orders.values():
                if order["status"] == "COMPLETED":
                    ref = order["purchase_units"][0]["custom_id"]
                    counts[ref] = counts.get(ref, 0) + 1
        return counts
