"""What every webhook scheme shares: the request as received, the verdict, the base class.

A verifier only translates one vendor's signature construction; the base class
owns the rest (trying several active secrets, freshness against an injected
``now``, constant-time comparison), so every scheme fails the same way with the
same reason codes.  A verdict explains *why* a request was refused but never
carries a secret or the signature we expected.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

from connectorctl.errors import ConnectorctlError, ExitCode

DEFAULT_TOLERANCE_SECONDS = 300
DEFAULT_REPLAY_WINDOW_SECONDS = 86400


class Reason:
    """Stable reason codes: they appear in verdicts, log rows' ``error_code``, CLI errors and HTTP bodies."""

    OK = "ok"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"
    REPLAY = "replay"
    MALFORMED_HEADER = "malformed_header"
    MISSING_HEADER = "missing_header"
    MALFORMED_BODY = "malformed_body"
    UNTRUSTED_CERT = "untrusted_cert"  # a signing certificate we may not fetch or cannot use (PayPal)

    ALL = (OK, BAD_SIGNATURE, STALE, REPLAY, MALFORMED_HEADER, MISSING_HEADER, MALFORMED_BODY, UNTRUSTED_CERT)


class WebhookRejectedError(ConnectorctlError):
    """A delivery failed verification; ``code`` is the verdict's reason."""

    exit_code = ExitCode.FAILED

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = reason


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying one delivery; safe to log, print and return over HTTP."""

    ok: bool
    reason: str
    scheme: str
    detail: str = ""
    event_id: str | None = None
    event_type: str | None = None
    timestamp: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WebhookRequest:
    """A delivery exactly as received: raw body bytes, headers (case-insensitive), full public URL."""

    def __init__(
        self, body: bytes, headers: Mapping[str, str] | Sequence[tuple[str, str]] = (), url: str | None = None
    ) -> None:
        self.body = bytes(body)
        items = headers.items() if isinstance(headers, Mapping) else headers
        self.headers: dict[str, str] = {}
        for name, value in items:
            self.headers.setdefault(name.lower(), value)
        self.url = url

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


@dataclass(frozen=True)
class SignedRequest:
    """A signed example delivery produced by ``sign``: feed it to a receiver under test."""

    scheme: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def request(self) -> WebhookRequest:
        return WebhookRequest(self.body, self.headers, self.url)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "scheme": self.scheme,
            "url": self.url,
            "headers": dict(self.headers),
            "body": self.body.decode("utf-8", errors="replace"),
        }
        data.update(self.extra)
        return data


class Rejected(Exception):
    """Raised inside a verifier to stop with a reason; turned into a Verdict by the base class."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two strings or byte strings."""
    if isinstance(a, str):
        a = a.encode("utf-8")
    if isinstance(b, str):
        b = b.encode("utf-8")
    return hmac.compare_digest(a, b)


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def fingerprint(*parts: str | bytes) -> str:
    """A delivery id for schemes that carry none: a hash of what identifies the delivery."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") if isinstance(part, str) else part)
        h.update(b"\x00")
    return "sha256:" + h.hexdigest()[:40]


def require(request: WebhookRequest, name: str) -> str:
    value = request.header(name)
    if value is None or not value.strip():
        raise Rejected(Reason.MISSING_HEADER, f"missing {name} header")
    return value.strip()


def parse_timestamp(value: Any, where: str) -> int:
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise Rejected(Reason.MALFORMED_HEADER, f"{where} is not a unix timestamp")
    return int(text)


class Verifier:
    """One signature scheme.  Subclasses implement :meth:`check` and :meth:`sign_request`.

    ``check`` raises :class:`Rejected` for a request it cannot accept under any
    secret (missing/malformed header) and returns True when ``secret`` signed
    it.  ``describe`` extracts the delivery id (for replay detection) and the
    event type without trusting anything before the signature passed.
    """

    scheme: ClassVar[str] = ""
    timestamped: ClassVar[bool] = False
    reject_future: ClassVar[bool] = True  # Stripe only rejects old timestamps

    def __init__(
        self,
        *,
        tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
        url: str | None = None,
        replay_window_seconds: float = DEFAULT_REPLAY_WINDOW_SECONDS,
        **options: Any,
    ) -> None:
        self.tolerance = float(tolerance_seconds)
        if not 0 <= self.tolerance < float("inf"):  # nan or a negative value would silently switch freshness off
            from connectorctl.errors import ConfigurationError

            raise ConfigurationError(
                f"webhook tolerance must be 0 (off) or a positive number of seconds, got {tolerance_seconds!r}"
            )
        self.url = url
        self.replay_window = float(replay_window_seconds)
        self.options = options

    # --- scheme hooks -------------------------------------------------------------------------
    def prepare(self, request: WebhookRequest) -> Any:
        """Parse headers/body once per request (raises Rejected); result goes to check()."""
        raise NotImplementedError

    def check(self, request: WebhookRequest, parsed: Any, secret: str) -> bool:
        raise NotImplementedError

    def timestamp(self, parsed: Any) -> int | None:
        return None

    def describe(self, request: WebhookRequest, parsed: Any) -> tuple[str | None, str | None]:
        """(delivery id, event type) of an authentic request."""
        return None, None

    def sign_request(
        self, body: bytes, secret: str, *, now: float, url: str | None, event_id: str | None
    ) -> SignedRequest:
        raise NotImplementedError

    # --- shared flow --------------------------------------------------------------------------
    def effective_url(self, request: WebhookRequest) -> str | None:
        """The configured public URL (proxies change scheme/host), keeping the received query when it has none."""
        if not self.url:
            return request.url
        if request.url and "?" in request.url and "?" not in self.url:
            return self.url + "?" + request.url.split("?", 1)[1]
        return self.url

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: float | None = None) -> Verdict:
        """Check ``request`` against every active secret; then freshness.  Never raises for bad input."""
        now = time.time() if now is None else now
        try:
            if not secrets:
                raise Rejected(Reason.BAD_SIGNATURE, "no secret configured")
            parsed = self.prepare(request)
            if not any(self.check(request, parsed, s) for s in secrets):
                raise Rejected(Reason.BAD_SIGNATURE, "signature does not match any active secret")
            ts = self.timestamp(parsed)
            if ts is not None and self.tolerance > 0:
                if now - ts > self.tolerance:
                    raise Rejected(
                        Reason.STALE, f"timestamp is {int(now - ts)} s old (tolerance {int(self.tolerance)} s)"
                    )
                if self.reject_future and ts - now > self.tolerance:
                    raise Rejected(
                        Reason.STALE,
                        f"timestamp is {int(ts - now)} s in the future (tolerance {int(self.tolerance)} s)",
                    )
            event_id, event_type = self.describe(request, parsed)
            event_id = event_id or fingerprint(request.body)
        except Rejected as exc:
            return Verdict(False, exc.reason, self.scheme, exc.detail)
        return Verdict(True, Reason.OK, self.scheme, "", event_id, event_type, ts)

    def sign(
        self, body: bytes, secret: str, *, now: float | None = None, url: str | None = None, event_id: str | None = None
    ) -> SignedRequest:
        """A correctly signed example delivery of ``body`` (for testing receivers)."""
        return self.sign_request(
            body, secret, now=time.time() if now is None else now, url=url or self.url, event_id=event_id
        )

    def replay_expiry(self, verdict: Verdict, now: float) -> float:
        """Until when a delivery id must be remembered: while its timestamp would still pass."""
        if verdict.timestamp is not None and self.tolerance > 0:
            return max(now, verdict.timestamp + self.tolerance)
        return now + self.replay_window


def json_field(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def first_event(data: Any, key: str) -> str | None:
    """The ``key`` of the first event of a JSON array of events (SendGrid, Mandrill)."""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        value = data[0].get(key)
        return str(value) if value is not None else None
    return None
