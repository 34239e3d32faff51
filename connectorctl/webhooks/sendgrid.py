"""SendGrid Event Webhook: ECDSA P-256 / SHA-256 over ``timestamp + raw body``.

``X-Twilio-Email-Event-Webhook-Signature`` is a base64 DER signature and the
"secret" is the account's *public* verification key (base64 DER
SubjectPublicKeyInfo, or PEM).  Signing (for tests) needs a private key in PEM
or base64 DER PKCS#8.  Base64 must be canonical so no two header spellings mean
the same signature.  ECDSA signatures are randomised, so the replay key is a
hash of timestamp and body, not of the signature.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from connectorctl.errors import ConfigurationError, InvalidInputError
from connectorctl.webhooks.base import (
    Reason,
    Rejected,
    SignedRequest,
    Verifier,
    WebhookRequest,
    fingerprint,
    first_event,
    parse_timestamp,
    require,
)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


@lru_cache(maxsize=32)
def public_key(text: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        key = (
            load_pem_public_key(text.encode())
            if "BEGIN" in text
            else load_der_public_key(base64.b64decode(text.strip(), validate=True))
        )
    except (ValueError, TypeError, binascii.Error):
        raise ConfigurationError("sendgrid verification key is not a base64 DER or PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigurationError("sendgrid verification key is not an ECDSA P-256 key")
    return key


def private_key(text: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

    try:
        key = (
            load_pem_private_key(text.encode(), None)
            if "BEGIN" in text
            else load_der_private_key(base64.b64decode(text.strip(), validate=True), None)
        )
    except (ValueError, TypeError, binascii.Error):
        raise InvalidInputError("sendgrid signing needs an unencrypted P-256 private key (PEM or base64 DER)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInputError("sendgrid signing needs an ECDSA P-256 private key")
    return key


def public_key_b64(key: Any) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).decode()


class SendGridVerifier(Verifier):
    scheme = "sendgrid"
    timestamped = True

    def prepare(self, request: WebhookRequest) -> tuple[bytes, str, int]:
        text = require(request, SIGNATURE_HEADER)
        raw_ts = require(request, TIMESTAMP_HEADER)
        ts = parse_timestamp(raw_ts, TIMESTAMP_HEADER)
        try:
            signature = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(Reason.MALFORMED_HEADER, f"{SIGNATURE_HEADER} is not base64") from None
        if not signature or base64.b64encode(signature).decode() != text:
            raise Rejected(Reason.MALFORMED_HEADER, f"{SIGNATURE_HEADER} is not canonical base64")
        return signature, raw_ts, ts

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature, raw_ts, _ = parsed
        try:
            public_key(secret).verify(signature, raw_ts.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def timestamp(self, parsed: Any) -> int:
        return parsed[2]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        return fingerprint(parsed[1], request.body), first_event(request.json(), "event")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        key = private_key(secret)
        ts = str(int(now))
        signature = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
        headers = {SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: ts}
        return SignedRequest(self.scheme, body, headers, url, {"public_key": public_key_b64(key)})
