"""Mailgun: the signature travels **in the JSON body**, not in a header.

``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``;
``signature`` = hex HMAC-SHA256(signing key, timestamp + token).  The event
data itself is not covered, so Mailgun's docs ask receivers to check freshness
and refuse reused tokens: the token is our replay key.  Legacy form posts
(``timestamp``/``token``/``signature`` fields) are accepted too.  For this scheme
``missing_header``/``malformed_header`` refer to that signature object.
"""

from __future__ import annotations

import json
import secrets as _secrets
from typing import Any

from connectorctl.errors import InvalidInputError
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
)
from connectorctl.webhooks.twilio import form_params


def _signature_fields(request: WebhookRequest) -> tuple[Any, Any, Any]:
    if request.body.lstrip()[:1] == b"{":
        data = request.json()
        if not isinstance(data, dict):
            raise Rejected(Reason.MALFORMED_BODY, "body is not a JSON object")
        sig = data.get("signature")
        if sig is None:
            raise Rejected(Reason.MISSING_HEADER, "body has no signature object")
        if not isinstance(sig, dict):
            raise Rejected(Reason.MALFORMED_HEADER, "signature is not an object")
        return sig.get("timestamp"), sig.get("token"), sig.get("signature")
    fields = dict(form_params(request.body))
    if "signature" not in fields:
        raise Rejected(Reason.MISSING_HEADER, "body has no signature")
    return fields.get("timestamp"), fields.get("token"), fields.get("signature")


class MailgunVerifier(Verifier):
    scheme = "mailgun"
    timestamped = True

    def prepare(self, request: WebhookRequest) -> tuple[str, int, str, str]:
        raw_ts, token, signature = _signature_fields(request)
        if not isinstance(token, str) or not token or not isinstance(signature, str) or not signature:
            raise Rejected(Reason.MALFORMED_HEADER, "signature needs string token and signature")
        if isinstance(raw_ts, bool) or not isinstance(raw_ts, (str, int)):
            raise Rejected(Reason.MALFORMED_HEADER, "signature timestamp is missing")
        raw = str(raw_ts)
        return raw, parse_timestamp(raw, "signature timestamp"), token, signature

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        raw, _, token, signature = parsed
        return equal(hmac_digest(secret.encode("utf-8"), (raw + token).encode("utf-8")).hex(), signature)

    def timestamp(self, parsed: Any) -> int:
        return parsed[1]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        data = request.json()
        if data is None:
            return parsed[2], dict(form_params(request.body)).get("event")
        return parsed[2], json_field(data, "event-data", "event")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        try:
            data = json.loads(body) if body.strip() else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise InvalidInputError("mailgun signs a JSON object body (the signature is added to it)")
        ts, token = str(int(now)), event_id or _secrets.token_hex(25)
        data["signature"] = {
            "timestamp": ts,
            "token": token,
            "signature": hmac_digest(secret.encode("utf-8"), (ts + token).encode()).hex(),
        }
        return SignedRequest(self.scheme, json.dumps(data).encode(), {"Content-Type": "application/json"}, url)
