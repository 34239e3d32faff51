"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``.

No timestamp: ``X-GitHub-Delivery`` (a GUID per delivery, kept on redelivery)
is the replay key.  GitHub sends the SHA-256 header on every delivery and says
SHA-1 should not be used for security purposes, so the legacy
``X-Hub-Signature: sha1=`` header is refused unless ``allow_sha1`` turns it on
(for an old GitHub Enterprise server), and even then only when the SHA-256
header is absent.
"""

from __future__ import annotations

import uuid
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
)

HEADER = "X-Hub-Signature-256"
LEGACY_HEADER = "X-Hub-Signature"


class GitHubVerifier(Verifier):
    scheme = "github"

    def __init__(self, *, allow_sha1: bool = False, **options: Any) -> None:
        super().__init__(**options)
        self.headers = ((HEADER, "sha256"), (LEGACY_HEADER, "sha1")) if allow_sha1 else ((HEADER, "sha256"),)

    def prepare(self, request: WebhookRequest) -> tuple[str, str]:
        for name, algorithm in self.headers:
            value = request.header(name)
            if value is None or not value.strip():
                continue
            prefix, sep, digest = value.strip().partition("=")
            if not sep or prefix != algorithm or not digest:
                raise Rejected(Reason.MALFORMED_HEADER, f"{name} must look like {algorithm}=<hex>")
            return algorithm, digest
        legacy = len(self.headers) == 1 and request.header(LEGACY_HEADER)
        raise Rejected(
            Reason.MISSING_HEADER,
            f"missing {HEADER} header"
            + (f" (a SHA-1 {LEGACY_HEADER} alone is refused unless allow_sha1 is set)" if legacy else ""),
        )

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        algorithm, digest = parsed
        return equal(hmac_digest(secret.encode("utf-8"), request.body, algorithm).hex(), digest)

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        return request.header("X-GitHub-Delivery") or fingerprint(parsed[1]), request.header("X-GitHub-Event")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        sig = hmac_digest(secret.encode("utf-8"), body).hex()
        headers = {
            HEADER: f"sha256={sig}",
            "X-GitHub-Delivery": event_id or str(uuid.uuid4()),
            "X-GitHub-Event": "ping",
        }
        return SignedRequest(self.scheme, body, headers, url)
