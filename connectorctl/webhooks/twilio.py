"""Twilio: ``X-Twilio-Signature`` = base64 HMAC over the public URL plus sorted POST params.

Form callbacks sign ``url + Σ sorted(name + value)``; JSON callbacks carry
``?bodySHA256=<hex>`` in the URL, sign the URL alone and the body must hash to
that value.  SharedKey webhooks name ``HMAC_SHA256`` in
``X-Twilio-Webhooks-Signature-Settings``; otherwise HMAC-SHA1 with the Auth
Token.  The URL is tried with and without the default port, like Twilio's SDK.
Mandrill reuses :func:`signed_string` (the same legacy construction).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

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
    json_field,
    require,
)

HEADER = "X-Twilio-Signature"
SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
ALGORITHMS = {"HMAC_SHA1": "sha1", "HMAC_SHA256": "sha256"}
STATUS_FIELDS = ("MessageStatus", "SmsStatus", "CallStatus", "EventType")


def form_params(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Rejected(Reason.MALFORMED_BODY, "body is not a URL-encoded form") from None


def signed_string(url: str, params: list[tuple[str, str]]) -> str:
    grouped: dict[str, set[str]] = {}
    for name, value in params:
        grouped.setdefault(name, set()).add(value)
    return url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))


def b64_hmac(secret: str, text: str, algorithm: str = "sha1") -> str:
    return base64.b64encode(hmac_digest(secret.encode("utf-8"), text.encode("utf-8"), algorithm)).decode()


def url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = parts.netloc[: len(parts.netloc) - len(host)]
    if parts.port:
        other = userinfo + host.rsplit(":", 1)[0]
    else:
        other = parts.netloc + (":443" if parts.scheme == "https" else ":80")
    return [url, urlunsplit(parts._replace(netloc=other))]


def _need_url(url: str | None) -> str:
    if not url:
        raise ConfigurationError("this scheme signs the public URL: give --url or set webhooks.<service>.url")
    return url


class TwilioVerifier(Verifier):
    scheme = "twilio"

    def prepare(self, request: WebhookRequest) -> tuple[str, str, list[tuple[str, str]]]:
        signature = require(request, HEADER)
        url = _need_url(self.effective_url(request))
        algorithm = "sha1"
        settings = request.header(SETTINGS_HEADER)
        if settings:
            for part in settings.split(","):
                name, _, value = part.partition("=")
                if name.strip() == "algorithm":
                    if value.strip() not in ALGORITHMS:
                        raise Rejected(Reason.MALFORMED_HEADER, f"{SETTINGS_HEADER} names an unknown algorithm")
                    algorithm = ALGORITHMS[value.strip()]
        body_hash = parse_qs(urlsplit(url).query).get("bodySHA256")
        if body_hash:
            if not equal(hashlib.sha256(request.body).hexdigest(), body_hash[0]):
                raise Rejected(Reason.BAD_SIGNATURE, "body does not match the bodySHA256 in the URL")
            return signature, algorithm, []
        return signature, algorithm, form_params(request.body)

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        signature, algorithm, params = parsed
        url = _need_url(self.effective_url(request))
        return any(equal(b64_hmac(secret, signed_string(u, params), algorithm), signature) for u in url_variants(url))

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        event_id = request.header("I-Twilio-Idempotency-Token") or fingerprint(parsed[0], request.body)
        fields = dict(parsed[2])
        event_type = next((fields[f] for f in STATUS_FIELDS if fields.get(f)), None)
        if not parsed[2]:
            event_type = json_field(request.json(), "type")
        return event_id, event_type

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        url = _need_url(url)
        if body.lstrip()[:1] in (b"{", b"["):
            url += ("&" if "?" in url else "?") + "bodySHA256=" + hashlib.sha256(body).hexdigest()
            params: list[tuple[str, str]] = []
        else:
            try:
                params = form_params(body)
            except Rejected:
                raise InvalidInputError("twilio signs a URL-encoded form body or a JSON body") from None
        return SignedRequest(self.scheme, body, {HEADER: b64_hmac(secret, signed_string(url, params))}, url)
