"""Vonage signed webhooks (SMS API delivery receipts and inbound messages): a ``sig`` parameter.

The parameters (form fields, or the keys of a JSON body) other than ``sig``
are sorted by name and joined as ``&name=value``, with ``&`` and ``=`` inside
values replaced by ``_``.  ``md5hash`` (the default, Vonage's legacy method)
appends the signature secret and takes the hex MD5; the HMAC methods (set
``algorithm: md5|sha1|sha256|sha512`` to match the account's setting) key an
HMAC with the secret instead.  Vonage adds ``timestamp`` (unix, checked for
freshness) and ``nonce`` (our replay key) to every signed request.
"""

from __future__ import annotations

import hashlib
import json
import secrets as _secrets
from typing import Any
from urllib.parse import urlencode

from connectorctl.errors import ConfigurationError, InvalidInputError
from connectorctl.webhooks.base import (
    Reason,
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    equal,
    fingerprint,
    hmac_digest,
    parse_timestamp,
)
from connectorctl.webhooks.twilio import form_params

METHODS = ("md5hash", "md5", "sha1", "sha256", "sha512")


def signed_string(params: dict[str, str]) -> str:
    return "".join(f"&{name}={str(params[name]).replace('&', '_').replace('=', '_')}" for name in sorted(params))


def signature(params: dict[str, str], secret: str, method: str) -> str:
    content = signed_string(params)
    if method == "md5hash":
        return hashlib.md5((content + secret).encode("utf-8")).hexdigest()
    return hmac_digest(secret.encode("utf-8"), content.encode("utf-8"), method).hex()


def _params(request: WebhookRequest) -> dict[str, str]:
    if request.body.lstrip()[:1] == b"{":
        data = request.json()
        if not isinstance(data, dict):
            raise Rejected(Reason.MALFORMED_BODY, "body is not a JSON object")
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    return dict(form_params(request.body))


class VonageVerifier(Verifier):
    scheme = "vonage"
    timestamped = True

    def __init__(self, *, algorithm: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method = (algorithm or "md5hash").lower()
        if self.method not in METHODS:
            raise ConfigurationError(f"vonage webhook algorithm must be one of {', '.join(METHODS)}")

    def prepare(self, request: WebhookRequest) -> tuple[str, dict[str, str], int]:
        params = _params(request)
        sig = params.pop("sig", "")
        if not sig:
            raise Rejected(
                Reason.MISSING_HEADER, "body has no sig parameter (enable signed webhooks in the Vonage dashboard)"
            )
        if "timestamp" not in params:
            raise Rejected(Reason.MALFORMED_HEADER, "signed parameters have no timestamp")
        return sig.lower(), params, parse_timestamp(params["timestamp"], "timestamp parameter")

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        return equal(signature(parsed[1], secret, self.method), parsed[0])

    def timestamp(self, parsed: Any) -> int:
        return parsed[2]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        params = parsed[1]
        return params.get("nonce") or fingerprint(parsed[0]), params.get("status") or params.get("type")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        as_json = body.lstrip()[:1] == b"{"
        try:
            loaded: Any = json.loads(body) if as_json else dict(form_params(body))
        except (ValueError, Rejected):
            loaded = None
        if not isinstance(loaded, dict):
            raise InvalidInputError("vonage signs a URL-encoded form body or a JSON object")
        params = {k: v for k, v in loaded.items() if k != "sig"}
        params.update(timestamp=str(int(now)), nonce=event_id or _secrets.token_hex(16))
        flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        params["sig"] = signature(flat, secret, self.method)
        if as_json:
            return SignedRequest(self.scheme, json.dumps(params).encode(), {"Content-Type": "application/json"}, url)
        return SignedRequest(
            self.scheme, urlencode(params).encode(), {"Content-Type": "application/x-www-form-urlencoded"}, url
        )
