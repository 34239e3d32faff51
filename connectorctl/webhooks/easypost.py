"""EasyPost: ``X-Hmac-Signature: hmac-sha256-hex=<hex>`` over the raw body.

The key is the NFKD-normalised webhook secret (what EasyPost's SDK does), so a
secret typed with composed accents still matches.  No timestamp: the event
``id`` in the body is the replay key.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from connectorctl.webhooks.base import (
    Reason,
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    equal,
    fingerprint,
    hmac_digest,
    json_field,
    require,
)

HEADER = "X-Hmac-Signature"
PREFIX = "hmac-sha256-hex="


def _key(secret: str) -> bytes:
    return unicodedata.normalize("NFKD", secret).encode("utf-8")


class EasyPostVerifier(Verifier):
    scheme = "easypost"

    def prepare(self, request: WebhookRequest) -> str:
        value = require(request, HEADER)
        if not value.startswith(PREFIX) or len(value) == len(PREFIX):
            raise Rejected(Reason.MALFORMED_HEADER, f"{HEADER} must look like {PREFIX}<hex>")
        return value[len(PREFIX) :]

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        return equal(hmac_digest(_key(secret), request.body).hex(), parsed)

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        data = request.json()
        event_id = json_field(data, "id")
        return (str(event_id) if event_id else fingerprint(parsed)), json_field(data, "description")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        return SignedRequest(self.scheme, body, {HEADER: PREFIX + hmac_digest(_key(secret), body).hex()}, url)
