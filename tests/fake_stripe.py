"""A local Stripe (PaymentIntents + Refunds, API v1) faithful to the documented contract.

- Auth: ``Authorization: Bearer sk_...`` or Basic with the key as user name; else 401.
- Bodies: ``application/x-www-form-urlencoded`` with bracket notation.
- ``Idempotency-Key`` on POST: the first answer (success or card error) is stored
  and replayed with ``Idempotent-Replayed: true``; the same key with other
  parameters (or on another endpoint) is a 400 ``idempotency_error``.  A request
  refused by parameter validation stores nothing, as Stripe documents.
- Test payment methods: ``pm_card_visa`` (and any other ``pm_card_*``) succeeds,
  ``pm_card_chargeDeclined`` (402 ``card_declined``/``generic_decline``),
  ``pm_card_chargeDeclinedInsufficientFunds`` (``insufficient_funds``),
  ``pm_card_authenticationRequired`` (``requires_action``).
- Reads: retrieve (``expand[]=latest_charge``), list with ``created[gte]`` and
  ``starting_after`` pagination, search by metadata, refunds by payment intent.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import time
import urllib.parse
from typing import Any

from tests.fake_payment_server import PaymentFake, Response, Seen, decode_brackets, json_response

API_KEY = "sk_test_fake51Hx0000000000000000"
DECLINES = {"pm_card_chargeDeclined": "generic_decline", "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
            "pm_card_chargeDeclinedExpiredCard": "expired_card"}
_PI_PATH = re.compile(r"^/v1/payment_intents/(pi_[A-Za-z0-9]+)(/capture|/cancel|/confirm)?$")


def _error(status: int, type_: str, message: str, **extra: Any) -> Response:
    return json_response(status, {"error": {"type": type_, "message": message, **extra}}, **{"Request-Id": "req_fake"})


class FakeStripe(PaymentFake):
    def __init__(self, *, api_key: str = API_KEY, drop_rate: float = 0.0, seed: int = 1, answer_delay: float = 0.0) -> None:
        super().__init__(drop_rate=drop_rate, seed=seed, answer_delay=answer_delay)
        self.api_key = api_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotency: dict[str, tuple[str, Response]] = {}
        self._ids = itertools.count(1)
        self.clock = time.time

    def fault_body(self, status: int) -> Any:
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"error": {"type": kind, "message": f"fake Stripe answered {status}"}}

    # -- protocol -----------------------------------------------------------------
    def _authorized(self, req: Seen) -> bool:
        auth = req.header("Authorization") or ""
        if auth.startswith("Bearer "):
            return auth[7:] == self.api_key
        if auth.startswith("Basic "):
            try:
                user, _, _ = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
            return user == self.api_key
        return False

    def handle(self, req: Seen) -> Response:
        if not self._authorized(req):
            return _error(401, "invalid_request_error", "Invalid API Key provided")
        if req.method == "GET":
            return self._read(req)
        if req.method != "POST":
            return _error(405, "invalid_request_error", "method not allowed")
        if not (req.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return _error(400, "invalid_request_error", "expected a form-encoded body")
        params = decode_brackets(urllib.parse.parse_qsl(req.body.decode(), keep_blank_values=True))
        key = req.header("Idempotency-Key")
        digest = hashlib.sha256(json.dumps([req.path, params], sort_keys=True).encode()).hexdigest()
        if key:
            if len(key) > 255:
                return _error(400, "invalid_request_error", "Idempotency-Key is longer than 255 characters")
            stored = self.idempotency.get(key)
            if stored is not None:
                if stored[0] != digest:
                    return _error(400, "idempotency_error", "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '%s' if you meant to execute a different request." % key)
                status, headers, payload = stored[1]
                return status, {**headers, "Idempotent-Replayed": "true"}, payload
        response, keep = self._write(req.path, params)
        if key and keep:
            self.idempotency[key] = (digest, response)
        return response

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}fake"

    # -- writes: (response, whether Stripe stores it under the idempotency key) ---------
    def _write(self, path: str, params: dict[str, Any]) -> tuple[Response, bool]:
        if path == "/v1/payment_intents":
            return self._create(params)
        if path == "/v1/refunds":
            return self._refund(params)
        match = _PI_PATH.match(path)
        if match and match.group(2):
            pi = self.intents.get(match.group(1))
            if pi is None:
                return _error(404, "invalid_request_error", f"No such payment_intent: '{match.group(1)}'", code="resource_missing"), False
            if match.group(2) == "/capture":
                return self._capture(pi, params)
            if match.group(2) == "/cancel":
                return self._cancel(pi, params)
        return _error(404, "invalid_request_error", f"Unrecognized request URL (POST: {path})"), False

    def _create(self, p: dict[str, Any]) -> tuple[Response, bool]:
        amount, currency = p.get("amount", ""), p.get("currency", "")
        if not amount.isdigit() or int(amount) < 1:
            return _error(400, "invalid_request_error", "Missing required param: amount.", param="amount", code="parameter_missing"), False
        if not re.fullmatch(r"[a-z]{3}", currency):
            return _error(400, "invalid_request_error", "Invalid currency", param="currency", code="parameter_invalid_string"), False
        capture_method = p.get("capture_method", "automatic")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            return _error(400, "invalid_request_error", "Invalid capture_method", param="capture_method"), False
        pi = {
            "id": self._new_id("pi"), "object": "payment_intent", "amount": int(amount), "amount_capturable": 0,
            "amount_received": 0, "currency": currency, "capture_method": capture_method, "status": "requires_payment_method",
            "metadata": p.get("metadata", {}), "description": p.get("description"), "payment_method": p.get("payment_method"),
            "created": int(self.clock()), "livemode": False, "latest_charge": None, "last_payment_error": None,
            "client_secret": None, "next_action": None, "cancellation_reason": None,
        }
        pi["client_secret"] = f"{pi['id']}_secret_fake"
        self.intents[pi["id"]] = pi
        if pi["payment_method"] and p.get("confirm") == "true":
            return self._confirm(pi)
        if pi["payment_method"]:
            pi["status"] = "requires_confirmation"
        return json_response(200, pi), True

    def _confirm(self, pi: dict[str, Any]) -> tuple[Response, bool]:
        pm = pi["payment_method"]
        if pm in DECLINES:
            charge = self._charge(pi, status="failed")
            error = {"type": "card_error", "code": "card_declined", "decline_code": DECLINES[pm], "message": "Your card was declined.",
                     "charge": charge["id"], "payment_method": {"id": pm}}
            pi.update(status="requires_payment_method", last_payment_error=error)
            return _error(402, "card_error", "Your card was declined.", code="card_declined", decline_code=DECLINES[pm],
                          charge=charge["id"], payment_intent=pi), True
        if pm == "pm_card_authenticationRequired":
            pi.update(status="requires_action", next_action={"type": "use_stripe_sdk"})
            return json_response(200, pi), True
        if not str(pm).startswith("pm_"):
            return _error(400, "invalid_request_error", f"No such PaymentMethod: '{pm}'", code="resource_missing", param="payment_method"), False
        charge = self._charge(pi, status="succeeded")
        if pi["capture_method"] == "manual":
            pi.update(status="requires_capture", amount_capturable=pi["amount"])
        else:
            pi.update(status="succeeded", amount_received=pi["amount"])
            charge["captured"], charge["amount_captured"] = True, pi["amount"]
        return json_response(200, pi), True

    def _charge(self, pi: dict[str, Any], *, status: str) -> dict[str, Any]:
        charge = {"id": self._new_id("ch"), "object": "charge", "amount": pi["amount"], "amount_captured": 0, "amount_refunded": 0,
                  "captured": False, "refunded": False, "currency": pi["currency"], "payment_intent": pi["id"], "status": status,
                  "metadata": pi["metadata"]}
        self.charges[charge["id"]] = charge
        pi["latest_charge"] = charge["id"]
        return charge

    def _capture(self, pi: dict[str, Any], p: dict[str, Any]) -> tuple[Response, bool]:
        if pi["status"] != "requires_capture":
            return _error(400, "invalid_request_error", f"This PaymentIntent could not be captured because it has a status of {pi['status']}.",
                          code="payment_intent_unexpected_state", payment_intent=pi), False
        amount = int(p.get("amount_to_capture") or pi["amount_capturable"])
        if not 0 < amount <= pi["amount_capturable"]:
            return _error(400, "invalid_request_error", "amount_to_capture is greater than the amount capturable", param="amount_to_capture"), False
        pi.update(status="succeeded", amount_received=amount, amount_capturable=0)
        charge = self.charges[pi["latest_charge"]]
        charge.update(captured=True, amount_captured=amount)
        return json_response(200, pi), True

    def _cancel(self, pi: dict[str, Any], p: dict[str, Any]) -> tuple[Response, bool]:
        if pi["status"] in ("succeeded", "canceled", "processing"):
            return _error(400, "invalid_request_error", f"You cannot cancel this PaymentIntent because it has a status of {pi['status']}.",
                          code="payment_intent_unexpected_state", payment_intent=pi), False
        pi.update(status="canceled", amount_capturable=0, cancellation_reason=p.get("cancellation_reason"))
        return json_response(200, pi), True

    def _refund(self, p: dict[str, Any]) -> tuple[Response, bool]:
        pi = self.intents.get(p.get("payment_intent", ""))
        if pi is None:
            return _error(400, "invalid_request_error", "No such payment_intent", param="payment_intent", code="resource_missing"), False
        charge = self.charges.get(pi["latest_charge"] or "")
        if pi["status"] != "succeeded" or charge is None:
            return _error(400, "invalid_request_error", "This PaymentIntent does not have a successful charge to refund.",
                          code="charge_not_refundable"), False
        left = charge["amount_captured"] - charge["amount_refunded"]
        amount = int(p.get("amount") or left)
        if left <= 0:
            return _error(400, "invalid_request_error", f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"), False
        if not 0 < amount <= left:
            return _error(400, "invalid_request_error", f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                          param="amount", code="amount_too_large"), False
        if p.get("reason") not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            return _error(400, "invalid_request_error", "Invalid reason", param="reason"), False
        refund = {"id": self._new_id("re"), "object": "refund", "amount": amount, "currency": pi["currency"], "charge": charge["id"],
                  "payment_intent": pi["id"], "status": "succeeded", "reason": p.get("reason"), "metadata": p.get("metadata", {}),
                  "created": int(self.clock())}
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
        return json_response(200, refund), True

    # -- reads ----------------------------------------------------------------------
    def _read(self, req: Seen) -> Response:
        q = req.query
        match = _PI_PATH.match(req.path)
        if match and not match.group(2):
            pi = self.intents.get(match.group(1))
            if pi is None:
                return _error(404, "invalid_request_error", f"No such payment_intent: '{match.group(1)}'", code="resource_missing")
            expand = {v for k, vs in q.items() if k.startswith("expand[") for v in vs}
            return json_response(200, {**pi, "latest_charge": self.charges.get(pi["latest_charge"] or "")} if "latest_charge" in expand and pi["latest_charge"] else pi)
        if req.path == "/v1/payment_intents":
            since = int(q.get("created[gte]", ["0"])[0])
            items = sorted((pi for pi in self.intents.values() if pi["created"] >= since), key=lambda pi: pi["id"], reverse=True)
            return self._page(items, q, "/v1/payment_intents")
        if req.path == "/v1/balance":
            return json_response(200, {"object": "balance", "livemode": False, "available": [{"amount": 0, "currency": "usd"}], "pending": []})
        if req.path == "/v1/payment_intents/search":
            m = re.fullmatch(r"metadata\[['\"]([^'\"]+)['\"]\]:['\"]([^'\"]*)['\"]", q.get("query", [""])[0])
            if not m:
                return _error(400, "invalid_request_error", "unsupported search query", param="query")
            items = [pi for pi in self.intents.values() if pi["metadata"].get(m.group(1)) == m.group(2)]
            return json_response(200, {"object": "search_result", "data": items, "has_more": False, "next_page": None, "url": req.path})
        if req.path == "/v1/refunds":
            pi_id = q.get("payment_intent", [""])[0]
            items = sorted((r for r in self.refunds.values() if not pi_id or r["payment_intent"] == pi_id), key=lambda r: r["id"], reverse=True)
            return self._page(items, q, "/v1/refunds")
        return _error(404, "invalid_request_error", f"Unrecognized request URL (GET: {req.path})")

    def _page(self, items: list[dict[str, Any]], q: dict[str, list[str]], url: str) -> Response:
        limit = min(100, int(q.get("limit", ["10"])[0]))
        after = q.get("starting_after", [None])[0]
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        return json_response(200, {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url})

    # -- what tests check -------------------------------------------------------------
    def charges_by_reference(self, key: str = "connectorctl_reference") -> dict[str, int]:
        """How many successful charges (captured or authorized) the vendor holds per reference."""
        counts: dict[str, int] = {}
        with self.lock:
            for pi in self.intents.values():
                if pi["status"] in ("succeeded", "requires_capture"):
                    ref = pi["metadata"].get(key)
                    counts[ref] = counts.get(ref, 0) + 1
        return counts
