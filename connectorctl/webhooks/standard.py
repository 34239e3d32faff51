"""Standard Webhooks (Svix and others): ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

The key is the base64-*decoded* part of the ``whsec_`` secret (unlike Stripe),
the signed content is ``"{id}.{timestamp}.{raw body}"`` and the header holds
space-separated ``v1,<base64>`` entries; ``v1a`` (ed25519) entries are
skipped by this symmetric verifier.  Freshness is checked both ways.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from connectorctl.errors import ConfigurationError
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

PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_...`` secret (the prefix is optional)."""
    text = secret.strip()
    if text.startswith(PREFIX):
        text = text[len(PREFIX) :]
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("standard webhooks secret is not base64 after the whsec_ prefix") from None
    if not key:
        raise ConfigurationError("standard webhooks secret is empty")
    return key


class StandardWebhooksVerifier(Verifier):
    scheme = "standard"
    timestamped = True

    def prepare(self, request: WebhookRequest) -> tuple[str, int, list[str]]:
        msg_id = require(request, "webhook-id")
        ts = parse_timestamp(require(request, "webhook-timestamp"), "webhook-timestamp")
        signatures = []
        for entry in require(request, "webhook-signature").split(" "):
            version, sep, value = entry.partition(",")
            if sep and version == "v1" and value:
                signatures.append(value)
        if not signatures:
            raise Rejected(Reason.MALFORMED_HEADER, "webhook-signature has no v1,<base64> entry")
        return msg_id, ts, signatures

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        msg_id, ts, signatures = parsed
        expected = base64.b64encode(hmac_digest(secret_key(secret), f"{msg_id}.{ts}.".encode() + request.body)).decode()
        return any(equal(expected, s) for s in signatures)

    def timestamp(self, parsed: Any) -> int:
        return parsed[1]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        return parsed[0], json_field(request.json(), "type")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        msg_id = event_id or f"msg_{uuid.uuid4().hex}"
        ts = int(now)
        sig = base64.b64encode(hmac_digest(secret_key(secret), f"{msg_id}.{ts}.".encode() + body)).decode()
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": f"v1,{sig}"}
        return SignedRequest(self.scheme, body, headers, url)
