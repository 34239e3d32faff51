"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` over ``"{t}.{raw body}"``.

The ``whsec_`` secret is used verbatim as the HMAC key (unlike Standard
Webhooks).  Several ``v1`` entries appear while Stripe rolls a secret; any one
matching passes, other schemes (``v0``) are ignored.  Like Stripe's SDK only
*old* timestamps are refused.
"""

from __future__ import annotations

from typing import Any

from connectorctl.webhooks.base import (
    Reason,
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    equal,
    hmac_digest,
    json_field,
    parse_timestamp,
    require,
)

HEADER = "Stripe-Signature"


class StripeVerifier(Verifier):
    scheme = "stripe"
    timestamped = True
    reject_future = False

    def prepare(self, request: WebhookRequest) -> tuple[int, list[str]]:
        value = require(request, HEADER)
        timestamp: int | None = None
        signatures: list[str] = []
        for item in value.split(","):
            key, sep, val = item.partition("=")
            if not sep:
                raise Rejected(Reason.MALFORMED_HEADER, f"{HEADER} item without '='")
            if key == "t":
                timestamp = parse_timestamp(val, f"{HEADER} t")
            elif key == "v1":
                signatures.append(val)
        if timestamp is None:
            raise Rejected(Reason.MALFORMED_HEADER, f"{HEADER} has no t= timestamp")
        if not signatures:
            raise Rejected(Reason.MALFORMED_HEADER, f"{HEADER} has no v1 signature")
        return timestamp, signatures

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        timestamp, signatures = parsed
        expected = hmac_digest(secret.encode("utf-8"), f"{timestamp}.".encode() + request.body).hex()
        return any(equal(expected, s) for s in signatures)

    def timestamp(self, parsed: Any) -> int:
        return parsed[0]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        data = request.json()
        return json_field(data, "id"), json_field(data, "type")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        t = int(now)
        sig = hmac_digest(secret.encode("utf-8"), f"{t}.".encode() + body).hex()
        return SignedRequest(self.scheme, body, {HEADER: f"t={t},v1={sig}"}, url)
