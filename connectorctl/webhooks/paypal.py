"""PayPal webhooks, verified offline: SHA256withRSA over ``id|time|webhook_id|crc32(body)``.

PayPal signs ``PAYPAL-TRANSMISSION-ID``, ``PAYPAL-TRANSMISSION-TIME`` (ISO
8601), the id of the webhook subscription and the decimal CRC32 of the raw
body; ``PAYPAL-TRANSMISSION-SIG`` is the base64 RSA signature and
``PAYPAL-CERT-URL`` names the certificate holding the public key.  Verifying
offline saves a round trip to PayPal per delivery, but the certificate URL
comes from the request, so it is only fetched from PayPal's own API origins
(HTTPS; ``cert_origins`` widens that, e.g. for a local test server) and each
certificate is fetched once per process.  The "secrets" are the webhook ids:
they bind a delivery to our subscription, several may be active (live and
sandbox).  Signing (for tests) needs an RSA private key and the URL where the
matching certificate is served.
"""

from __future__ import annotations

import base64
import binascii
import threading
import uuid
import zlib
from datetime import datetime, timezone
from typing import Any, Sequence
from urllib.parse import urlsplit

from connectorctl.errors import ConfigurationError, InvalidInputError
from connectorctl.webhooks.base import Reason, Rejected, SignedRequest, Verifier, WebhookRequest, json_field, require

ID_HEADER = "PAYPAL-TRANSMISSION-ID"
TIME_HEADER = "PAYPAL-TRANSMISSION-TIME"
SIG_HEADER = "PAYPAL-TRANSMISSION-SIG"
CERT_HEADER = "PAYPAL-CERT-URL"
ALGO_HEADER = "PAYPAL-AUTH-ALGO"
ALGORITHM = "SHA256withRSA"
PAYPAL_CERT_ORIGINS = (
    "https://api.paypal.com",
    "https://api-m.paypal.com",
    "https://api.sandbox.paypal.com",
    "https://api-m.sandbox.paypal.com",
)
CERT_FETCH_TIMEOUT_SECONDS = 5.0
MAX_CERT_BYTES = 65536
MAX_CACHED_CERTS = 64


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of ``url``, lowercased; None for a URL with credentials or no host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    scheme = parts.scheme.lower()
    explicit = port is not None and (scheme, port) not in (("https", 443), ("http", 80))
    return f"{scheme}://{parts.hostname.lower()}" + (f":{port}" if explicit else "")


class CertificateCache:
    """PayPal certificates by URL, fetched once per process; a URL names one certificate for good."""

    def __init__(self) -> None:
        self._certs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> Any:
        with self._lock:
            cert = self._certs.get(url)
        if cert is None:
            cert = _fetch(url)
            with self._lock:
                if len(self._certs) >= MAX_CACHED_CERTS:
                    self._certs.pop(next(iter(self._certs)))
                self._certs[url] = cert
        return cert

    def clear(self) -> None:
        with self._lock:
            self._certs.clear()


CERTIFICATES = CertificateCache()


def _fetch(url: str) -> Any:
    import httpx
    from cryptography import x509

    try:
        with httpx.Client(timeout=CERT_FETCH_TIMEOUT_SECONDS, follow_redirects=False) as client:
            with client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise Rejected(Reason.UNTRUSTED_CERT, f"certificate URL answered HTTP {response.status_code}")
                data = b""
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_CERT_BYTES:
                        raise Rejected(Reason.UNTRUSTED_CERT, "certificate is too large")
    except httpx.HTTPError as exc:
        raise Rejected(Reason.UNTRUSTED_CERT, f"certificate could not be fetched ({type(exc).__name__})") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise Rejected(Reason.UNTRUSTED_CERT, "certificate URL did not serve a PEM certificate") from None


def _transmission_time(value: str) -> int:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Rejected(Reason.MALFORMED_HEADER, f"{TIME_HEADER} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise Rejected(Reason.MALFORMED_HEADER, f"{TIME_HEADER} has no time zone")
    return int(when.timestamp())


class PayPalVerifier(Verifier):
    scheme = "paypal"
    timestamped = True

    def __init__(
        self,
        *,
        cert_origins: Sequence[str] = (),
        signing_key_file: str | None = None,
        cert_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        origins = [origin(o) for o in (cert_origins or PAYPAL_CERT_ORIGINS)]
        if None in origins:
            raise ConfigurationError("paypal cert_origins must be URLs like https://api.paypal.com")
        self.cert_origins = frozenset(o for o in origins if o)
        self.signing_key_file = signing_key_file
        self.cert_url = cert_url

    def prepare(self, request: WebhookRequest) -> tuple[str, str, bytes, Any, int]:
        transmission_id, transmission_time = require(request, ID_HEADER), require(request, TIME_HEADER)
        signature_text, cert_url = require(request, SIG_HEADER), require(request, CERT_HEADER)
        if require(request, ALGO_HEADER) != ALGORITHM:
            raise Rejected(Reason.MALFORMED_HEADER, f"{ALGO_HEADER} is not {ALGORITHM}")
        try:
            signature = base64.b64decode(signature_text, validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(Reason.MALFORMED_HEADER, f"{SIG_HEADER} is not base64") from None
        timestamp = _transmission_time(transmission_time)
        if origin(cert_url) not in self.cert_origins:
            raise Rejected(
                Reason.UNTRUSTED_CERT,
                f"{CERT_HEADER} is not on an allowed origin ({', '.join(sorted(self.cert_origins))})",
            )
        return transmission_id, transmission_time, signature, self._public_key(cert_url, timestamp), timestamp

    @staticmethod
    def _public_key(cert_url: str, timestamp: int) -> Any:
        from cryptography.hazmat.primitives.asymmetric import rsa

        cert = CERTIFICATES.get(cert_url)
        if not cert.not_valid_before_utc.timestamp() <= timestamp <= cert.not_valid_after_utc.timestamp():
            raise Rejected(Reason.UNTRUSTED_CERT, "certificate was not valid at the transmission time")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise Rejected(Reason.UNTRUSTED_CERT, "certificate does not hold an RSA key")
        return key

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        transmission_id, transmission_time, signature, key, _ = parsed
        try:
            key.verify(
                signature,
                signed_message(transmission_id, transmission_time, secret, request.body),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return False
        return True

    def timestamp(self, parsed: Any) -> int:
        return parsed[4]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        """PayPal resends an event under a new transmission id, so the event's own id is the delivery id."""
        data = request.json()
        return json_field(data, "id") or parsed[0], json_field(data, "event_type")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        if not self.signing_key_file or not self.cert_url:
            raise InvalidInputError(
                "paypal signing needs an RSA private key file and the URL serving its certificate (--signing-key, "
                "--cert-url)"
            )
        try:
            with open(self.signing_key_file, "rb") as handle:
                key = load_pem_private_key(handle.read(), None)
        except OSError as exc:
            raise InvalidInputError(f"cannot read signing key {self.signing_key_file} ({exc.strerror})") from None
        except (ValueError, TypeError):
            raise InvalidInputError("paypal signing key is not an unencrypted PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise InvalidInputError("paypal signing key is not an RSA key")
        transmission_id = event_id or str(uuid.uuid4())
        transmission_time = datetime.fromtimestamp(int(now), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = key.sign(
            signed_message(transmission_id, transmission_time, secret, body), padding.PKCS1v15(), hashes.SHA256()
        )
        headers = {
            ID_HEADER: transmission_id,
            TIME_HEADER: transmission_time,
            SIG_HEADER: base64.b64encode(signature).decode(),
            CERT_HEADER: self.cert_url,
            ALGO_HEADER: ALGORITHM,
            "Content-Type": "application/json",
        }
        return SignedRequest(self.scheme, body, headers, url)
