"""Postmark: no signature — basic-auth credentials embedded in the webhook URL.

The "secret" is ``user:password``; the request must carry the matching
``Authorization: Basic`` header (compared in constant time).  Nothing covers
the body, so it can be altered in transit without detection: use HTTPS.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from connectorctl.errors import InvalidInputError
from connectorctl.webhooks.base import (
    Reason,
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    equal,
    fingerprint,
    json_field,
    require,
)


class PostmarkVerifier(Verifier):
    scheme = "postmark"

    def prepare(self, request: WebhookRequest) -> str:
        value = require(request, "Authorization")
        kind, _, token = value.partition(" ")
        if kind != "Basic" or not token:
            raise Rejected(Reason.MALFORMED_HEADER, "Authorization is not Basic credentials")
        try:
            raw = base64.b64decode(token, validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, ValueError):
            raise Rejected(Reason.MALFORMED_HEADER, "Authorization Basic value is not base64") from None
        if base64.b64encode(raw).decode() != token:
            raise Rejected(Reason.MALFORMED_HEADER, "Authorization Basic value is not canonical base64")
        if ":" not in decoded:
            raise Rejected(Reason.MALFORMED_HEADER, "Authorization Basic value has no user:password")
        return decoded

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        return equal(parsed, secret)

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        return fingerprint(request.body), json_field(request.json(), "RecordType")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        if ":" not in secret:
            raise InvalidInputError("postmark webhook credentials must look like user:password")
        return SignedRequest(
            self.scheme, body, {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}, url
        )
