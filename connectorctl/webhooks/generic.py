"""A configurable HMAC scheme for vendors without a dedicated verifier.

Options (config keys of ``webhooks.<service>`` or CLI flags): ``header``
(default ``X-Signature``), ``algorithm`` (sha1/sha256/sha512), ``encoding``
(hex/base64), ``prefix`` stripped from the header value (e.g. ``sha256=``),
``signed_content`` — a template over ``{body}``, ``{timestamp}``, ``{id}``
and ``{url}`` (default ``{body}``) — and optional ``timestamp_header`` /
``id_header`` that enable the freshness and replay checks.
"""

from __future__ import annotations

import base64
import re
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
    fingerprint,
    hmac_digest,
    json_field,
    parse_timestamp,
    require,
)

ALGORITHMS = ("sha1", "sha256", "sha512")
ENCODINGS = ("hex", "base64")
_PLACEHOLDER = re.compile(r"\{(body|timestamp|id|url)\}")


class GenericHmacVerifier(Verifier):
    scheme = "generic"

    def __init__(
        self,
        *,
        header: str | None = None,
        algorithm: str | None = None,
        encoding: str | None = None,
        prefix: str | None = None,
        signed_content: str | None = None,
        timestamp_header: str | None = None,
        id_header: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.header = header or "X-Signature"
        self.algorithm = (algorithm or "sha256").lower()
        self.encoding = (encoding or "hex").lower()
        self.prefix = prefix or ""
        self.template = signed_content or "{body}"
        self.timestamp_header = timestamp_header
        self.id_header = id_header
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(f"generic webhook algorithm must be one of {', '.join(ALGORITHMS)}")
        if self.encoding not in ENCODINGS:
            raise ConfigurationError(f"generic webhook encoding must be one of {', '.join(ENCODINGS)}")
        used = set(_PLACEHOLDER.findall(self.template))
        if "body" not in used:
            raise ConfigurationError("generic webhook signed_content must include {body}")
        if "timestamp" in used and not timestamp_header:
            raise ConfigurationError("generic webhook signed_content uses {timestamp} but no timestamp_header is set")
        if "id" in used and not id_header:
            raise ConfigurationError("generic webhook signed_content uses {id} but no id_header is set")
        if "url" in used and not self.url:
            raise ConfigurationError("generic webhook signed_content uses {url}: set url")

    def content(self, body: bytes, values: dict[str, str]) -> bytes:
        out, pos = bytearray(), 0
        for match in _PLACEHOLDER.finditer(self.template):
            out += self.template[pos : match.start()].encode()
            out += body if match.group(1) == "body" else values[match.group(1)].encode()
            pos = match.end()
        return bytes(out + self.template[pos:].encode())

    def encode(self, digest: bytes) -> str:
        return self.prefix + (digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode())

    def prepare(self, request: WebhookRequest) -> tuple[str, dict[str, str], int | None]:
        signature = require(request, self.header)
        if self.prefix and not signature.startswith(self.prefix):
            raise Rejected(Reason.MALFORMED_HEADER, f"{self.header} must start with {self.prefix}")
        values: dict[str, str] = {"url": self.url or ""}
        ts = None
        if self.timestamp_header:
            values["timestamp"] = require(request, self.timestamp_header)
            ts = parse_timestamp(values["timestamp"], self.timestamp_header)
        if self.id_header:
            values["id"] = require(request, self.id_header)
        return signature, values, ts

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        signature, values, _ = parsed
        return equal(
            self.encode(hmac_digest(secret.encode("utf-8"), self.content(request.body, values), self.algorithm)),
            signature,
        )

    def timestamp(self, parsed: Any) -> int | None:
        return parsed[2]

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        data = request.json()
        return parsed[1].get("id") or fingerprint(parsed[0]), json_field(data, "type") or json_field(data, "event")

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        values = {"url": url or self.url or "", "timestamp": str(int(now)), "id": event_id or uuid.uuid4().hex}
        headers = {
            self.header: self.encode(hmac_digest(secret.encode("utf-8"), self.content(body, values), self.algorithm))
        }
        if self.timestamp_header:
            headers[self.timestamp_header] = values["timestamp"]
        if self.id_header:
            headers[self.id_header] = values["id"]
        return SignedRequest(self.scheme, body, headers, url or self.url)
