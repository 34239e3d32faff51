"""GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>``.

No timestamp: ``X-GitHub-Delivery`` (a GUID per delivery, kept on redelivery)
is the replay key.  The legacy ``X-Hub-Signature: sha1=`` header is only used
when the SHA-256 one is absent.
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

    def prepare(self, request: WebhookRequest) -> tuple[str, str]:
        for name, algorithm in ((HEADER, "sha256"), (LEGACY_HEADER, "sha1")):
            value = request.header(name)
            if value is None or not value.strip():
                continue
            prefix, sep, digest = value.strip().partition("=")
            if not sep or prefix != algorithm or not digest:
                raise Rejected(Reason.MALFORMED_HEADER, f"{name} must look like {algorithm}=<hex>")
            return algorithm, digest
        raise Rejected(Reason.MISSING_HEADER, f"missing {HEADER} header")

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
