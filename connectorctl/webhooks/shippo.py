"""Shippo: a self-generated token in the webhook URL's query (``https://erp.example/hook?token=...``).

Shippo signs nothing by default; its documented protection is a token of our
choosing appended to the URL we register, echoed back on every delivery.  The
token is compared in constant time.  Nothing covers the body, so use HTTPS.
Deliveries carry no id: a hash of the body is the replay key, so the same
delivery twice is recognised, while a later update of the same parcel is not.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from connectorctl.webhooks.base import (
    Reason,
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    equal,
    fingerprint,
    json_field,
)

PARAM = "token"


class ShippoVerifier(Verifier):
    scheme = "shippo"

    def prepare(self, request: WebhookRequest) -> str:
        query = parse_qs(urlsplit(request.url or "").query)
        tokens = query.get(PARAM) or []
        if not tokens or not tokens[0]:
            raise Rejected(Reason.MISSING_HEADER, f"missing ?{PARAM}= in the webhook URL")
        if len(tokens) > 1:
            raise Rejected(Reason.MALFORMED_HEADER, f"more than one ?{PARAM}= in the webhook URL")
        return tokens[0]

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        return equal(parsed, secret)

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        return fingerprint(request.body), json_field(request.json(), "event")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        base = url or "http://127.0.0.1/api/connector/webhooks/shippo"
        separator = "&" if "?" in base else "?"
        return SignedRequest(
            self.scheme, body, {"Content-Type": "application/json"}, f"{base}{separator}{urlencode({PARAM: secret})}"
        )
