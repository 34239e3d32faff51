"""Mailchimp Transactional (Mandrill): ``X-Mandrill-Signature``.

base64 HMAC-SHA1 with the webhook key over the *exact* configured URL followed
by the sorted POST fields (name + value) — Twilio's legacy construction.  The
body is the form ``mandrill_events=<JSON array>``.  No timestamp; a hash of the
signature and body is the replay key.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from connectorctl.errors import InvalidInputError
from connectorctl.webhooks.base import (
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    equal,
    fingerprint,
    first_event,
    require,
)
from connectorctl.webhooks.twilio import _need_url, b64_hmac, form_params, signed_string

HEADER = "X-Mandrill-Signature"


class MandrillVerifier(Verifier):
    scheme = "mandrill"

    def prepare(self, request: WebhookRequest) -> tuple[str, list[tuple[str, str]]]:
        signature = require(request, HEADER)
        _need_url(self.effective_url(request))
        return signature, form_params(request.body)

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        url = _need_url(self.effective_url(request))
        return equal(b64_hmac(secret, signed_string(url, parsed[1])), parsed[0])

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        events = dict(parsed[1]).get("mandrill_events")
        try:
            data = json.loads(events) if events else None
        except ValueError:
            data = None
        return fingerprint(parsed[0], request.body), first_event(data, "event")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        url = _need_url(url)
        if body.lstrip()[:1] in (b"[", b"{"):
            body = urlencode({"mandrill_events": body.decode("utf-8")}).encode()
        try:
            params = form_params(body)
        except Rejected:
            raise InvalidInputError(
                "mandrill signs a URL-encoded form body (or a JSON array of events to wrap)"
            ) from None
        signature = b64_hmac(secret, signed_string(url, params))
        return SignedRequest(
            self.scheme, body, {HEADER: signature, "Content-Type": "application/x-www-form-urlencoded"}, url
        )
