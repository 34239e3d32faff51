"""PayPal's offline verification: SHA256withRSA over id|time|webhook_id|crc32(body), certificate
fetched only from allowed origins and only once."""

from __future__ import annotations

import base64
import json
import time
import zlib
from pathlib import Path
from typing import Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from connectorctl.errors import ConfigurationError
from connectorctl.webhooks import WebhookRequest, get_verifier
from connectorctl.webhooks.paypal import CERTIFICATES, PayPalVerifier
from tests.webhooks.paypal_certs import CertServer, certificate, write_key

WEBHOOK_ID = "8PT597110X687430LKGECATA"
BODY = json.dumps({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {"id": "3C1"}}).encode()


@pytest.fixture
def certs() -> Iterator[CertServer]:
    server = CertServer()
    CERTIFICATES.clear()
    yield server
    server.close()
    CERTIFICATES.clear()


@pytest.fixture
def signer(tmp_path: Path, certs: CertServer) -> PayPalVerifier:
    key = write_key(tmp_path / "paypal.pem")
    url = certs.add("CERT-1", certificate(key))
    verifier = get_verifier("paypal", cert_origins=(certs.origin,), signing_key_file=str(tmp_path / "paypal.pem"), cert_url=url)
    assert isinstance(verifier, PayPalVerifier)
    return verifier


def test_a_signed_delivery_verifies_and_the_certificate_is_fetched_once(signer: PayPalVerifier, certs: CertServer) -> None:
    now = time.time()
    for n in range(3):
        signed = signer.sign(BODY, WEBHOOK_ID, now=now, event_id=f"tx-{n}")
        verdict = signer.verify(signed.request(), ["WH-ID-OF-SANDBOX", WEBHOOK_ID], now=now)
        assert verdict.ok and verdict.event_id == "WH-1" and verdict.event_type == "PAYMENT.CAPTURE.COMPLETED"
    assert certs.fetches == {"CERT-1": 1}


def test_signature_is_the_documented_construction(signer: PayPalVerifier) -> None:
    """Independently of our signer: the signature must verify over ``id|time|webhook_id|decimal crc32``."""
    signed = signer.sign(BODY, WEBHOOK_ID, now=1_700_000_000, event_id="tx-1")
    key = load_pem_private_key(Path(signer.signing_key_file or "").read_bytes(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    message = f"tx-1|2023-11-14T22:13:20Z|{WEBHOOK_ID}|{zlib.crc32(BODY)}".encode()
    key.public_key().verify(base64.b64decode(signed.headers["PAYPAL-TRANSMISSION-SIG"]), message, padding.PKCS1v15(), hashes.SHA256())
    assert signed.headers["PAYPAL-AUTH-ALGO"] == "SHA256withRSA" and signed.headers["PAYPAL-TRANSMISSION-TIME"] == "2023-11-14T22:13:20Z"


def test_refusals(signer: PayPalVerifier, tmp_path: Path, certs: CertServer) -> None:
    now = time.time()
    signed = signer.sign(BODY, WEBHOOK_ID, now=now)
    headers = dict(signed.headers)

    def verdict(body: bytes = BODY, secrets: tuple[str, ...] = (WEBHOOK_ID,), at: float = now, **changed: str) -> tuple[str, str]:
        v = signer.verify(WebhookRequest(body, {**headers, **changed}), list(secrets), now=at)
        return v.reason, v.detail

    assert verdict()[0] == "ok"
    assert verdict(body=BODY.replace(b"3C1", b"3C2"))[0] == "bad_signature"
    assert verdict(secrets=("ANOTHER-WEBHOOK",))[0] == "bad_signature"
    assert verdict(at=now + 301)[0] == "stale" and verdict(at=now - 301)[0] == "stale"
    assert verdict(**{"PAYPAL-AUTH-ALGO": "SHA1withRSA"})[0] == "malformed_header"
    assert verdict(**{"PAYPAL-TRANSMISSION-TIME": "yesterday"})[0] == "malformed_header"
    # Another key's certificate (served from an allowed origin) does not verify our signature.
    other = certs.add("CERT-OTHER", certificate(write_key(tmp_path / "other.pem")))
    assert verdict(**{"PAYPAL-CERT-URL": other})[0] == "bad_signature"
    # Certificates are only fetched from allowed origins: nothing is fetched for the others.
    fetched = dict(certs.fetches)
    for url in ("https://evil.example/v1/notifications/certs/CERT-1", f"https://127.0.0.1:{certs.origin.rsplit(':', 1)[1]}/x",
                f"http://api.paypal.com@{certs.origin[7:]}/v1/notifications/certs/CERT-1", "file:///etc/passwd"):
        assert verdict(**{"PAYPAL-CERT-URL": url})[0] == "untrusted_cert", url
    assert certs.fetches == fetched
    assert verdict(**{"PAYPAL-CERT-URL": certs.origin + "/v1/notifications/certs/MISSING"})[0] == "untrusted_cert"
    expired = certs.add("CERT-EXPIRED", certificate(write_key(tmp_path / "expired.pem"), expired=True))
    reason, detail = verdict(**{"PAYPAL-CERT-URL": expired})
    assert reason == "untrusted_cert" and "not valid" in detail


def test_by_default_only_paypal_hosts_may_serve_certificates(signer: PayPalVerifier) -> None:
    strict = get_verifier("paypal")
    signed = signer.sign(BODY, WEBHOOK_ID)
    verdict = strict.verify(signed.request(), [WEBHOOK_ID])
    assert verdict.reason == "untrusted_cert" and "https://api.paypal.com" in verdict.detail
    with pytest.raises(ConfigurationError):
        get_verifier("paypal", cert_origins=("not a url",))
