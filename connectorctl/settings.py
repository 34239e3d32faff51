"""The typed, immutable settings of one installation (what :mod:`connectorctl.config` reads YAML into).

Settings every vendor shares live in :class:`VendorSettings`; a vendor's own
settings live in its module, in an options class that extends it (for example
``PostmarkOptions`` adds ``message_stream``), so adding a vendor never edits
this file.  This module imports nothing heavy: the CLI reads it on every start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping
from urllib.parse import urlsplit

DEFAULT_REDACT_FIELDS = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "api_key",
    "apikey",
    "x-postmark-server-token",
    "x-postmark-account-token",
    "key",
    "token",
    "access_token",
    "refresh_token",
    "client_secret",
    "password",
    "passwd",
    "secret",
    "auth_token",
    "card_number",
    "number",
    "cvc",
    "cvv",
)
AUTH_METHODS = ("api_key", "bearer_token", "basic_auth", "oauth2", "hmac", "none")  # domain.values.AuthMethod
MAX_PERIOD_S = 36500 * 86400  # longer than a century is a typo, and past year 9999 it cannot be stored or shown


@dataclass(frozen=True)
class CircuitBreakerSettings:
    failure_threshold: int = 5
    timeout_seconds: float = 60.0
    failure_rate_threshold: float | None = None
    window_seconds: float = 60.0
    minimum_calls: int = 20
    probe_lease_seconds: float = 30.0
    # How long a process may act on circuit rows it read without reading them again.  Changes normally
    # reach every process at once (a shared counter on SQLite, NOTIFY on PostgreSQL); this bounds the
    # rest: how long a host may keep calling after another host opened the circuit.  0: read every call.
    max_staleness_seconds: float = 1.0


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 3
    initial_delay_ms: int = 1000
    multiplier: float = 2.0
    max_delay_ms: int = 30000
    jitter: bool = True
    total_budget_ms: int = 120000


@dataclass(frozen=True)
class RateLimitSettings:
    limit: int
    per_seconds: float


@dataclass(frozen=True)
class VendorSettings:
    """What every vendor section (``vendors.<slug>``) accepts; a vendor's options class adds its own keys."""

    base_url: str | None = None
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    # TLS (HTTP vendors): PEM CA bundle that replaces the default trust for this vendor; client certificate and key
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    rate_limits: tuple[RateLimitSettings, ...] = ()
    rate_limit_max_wait_seconds: float = 5.0
    from_email: str | None = None
    from_name: str | None = None
    from_number: str | None = None
    # credentials: field name -> "env:VAR" reference (twelve-factor), used before the encrypted store
    credentials: Mapping[str, str] = field(default_factory=dict)
    auth_method: str | None = None
    token_url: str | None = None  # oauth2 token endpoint

    def problems(self) -> Iterator[tuple[str, str]]:
        """(key, message) for every value that cannot work; the loader reports the first with its file and line.

        Caught here, a typo is one config error; at call time it was a transport
        failure that opened the circuit.  An options class extends this with
        ``yield from super().problems()``.
        """
        for name in ("timeout_seconds", "connect_timeout_seconds", "rate_limit_max_wait_seconds"):
            if getattr(self, name) > MAX_PERIOD_S:
                yield name, f"is longer than {MAX_PERIOD_S // 86400} days"
        for i, window in enumerate(self.rate_limits):
            if window.per_seconds > MAX_PERIOD_S:
                yield f"rate_limits[{i}].per_seconds", f"is longer than {MAX_PERIOD_S // 86400} days"
            if window.limit < 1 or window.per_seconds <= 0:
                yield f"rate_limits[{i}]", "limit and per_seconds must be positive"
        if self.rate_limit_max_wait_seconds < 0:
            yield "rate_limit_max_wait_seconds", "must be 0 or more"
        yield from url_problems(self, "base_url", "token_url")
        for name in ("ca_bundle", "client_cert", "client_key"):
            if (path := getattr(self, name)) is not None and not os.path.isfile(os.path.expanduser(path)):
                yield name, f"no such file: {path}"
        if self.client_key and not self.client_cert:
            yield "client_key", "needs client_cert (the certificate it belongs to)"
        if self.auth_method is not None and self.auth_method not in AUTH_METHODS:
            yield "auth_method", f"expected one of {', '.join(AUTH_METHODS)}, got {self.auth_method!r}"
        if self.timeout_seconds <= 0 or self.connect_timeout_seconds <= 0:
            yield "timeout_seconds", "timeout_seconds and connect_timeout_seconds must be positive"


def url_problems(options: object, *names: str) -> Iterator[tuple[str, str]]:
    """An http(s) URL check for the named URL settings of ``options``."""
    for name in names:
        url = getattr(options, name)
        if url is not None and not is_http_url(url):
            yield name, f"expected an http:// or https:// URL, got {url!r}"


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass(frozen=True)
class StatusSettings:
    window_minutes: int = 15
    healthy_min_success_rate: float = 99.0
    degraded_min_success_rate: float = 90.0


@dataclass(frozen=True)
class LoggingSettings:
    redact_fields: tuple[str, ...] = DEFAULT_REDACT_FIELDS
    store_bodies: bool = True
    writer: str = "background"  # obsolete, still accepted ("sync" too): every row is committed before its call returns


@dataclass(frozen=True)
class WebhookSettings:
    """One inbound webhook endpoint (``webhooks.<service>``); see docs/webhooks.md."""

    scheme: str = ""
    secret_env: tuple[str, ...] = ()  # env vars holding the active secrets (several while rotating)
    secrets_from_creds: str | None = None  # credential-store service whose secret/api_key/token field is used
    tolerance_seconds: float = 300.0
    replay_window_seconds: float = 86400.0  # how long ids of schemes without a timestamp are remembered
    url: str | None = None  # public URL the vendor calls (twilio, mandrill sign it)
    max_body_bytes: int = 1048576
    allow_sha1: bool = (
        False  # github: also accept the legacy SHA-1 X-Hub-Signature (when X-Hub-Signature-256 is absent)
    )
    cert_origins: tuple[
        str, ...
    ] = ()  # paypal: where signing certificates may be fetched from (default PayPal's API hosts)
    # generic HMAC scheme
    header: str | None = None
    algorithm: str | None = None
    encoding: str | None = None
    prefix: str | None = None
    signed_content: str | None = None
    timestamp_header: str | None = None
    id_header: str | None = None


@dataclass(frozen=True)
class OutboxSettings:
    """How queued messages are worked off (docs/outbox.md)."""

    lease_seconds: float = 600.0  # a claimed message is another worker's again after this; longer than any one send
    backoff_initial_seconds: float = 60.0  # first wait after a transient failure, doubled per failure
    backoff_max_seconds: float = 3600.0
    max_age_hours: float = 72.0  # a message still failing this long after it was queued is dead-lettered
    poll_seconds: float = 5.0  # longest idle sleep of a worker between looks at the queue
    check_delay_seconds: float = 30.0  # wait before asking the vendor about an uncertain send (search indexes lag)


@dataclass(frozen=True)
class InboundSettings(WebhookSettings):
    """One inbound-mail endpoint (``inbound.<service>``, see docs/inbound.md): the vendor's payload format, how
    deliveries are verified (the webhook fields; ``scheme: none`` only behind a secret URL) and the hooks to call."""

    format: str | None = None  # sendgrid | mailgun | postmark | mailchimp; null = the service name
    hooks: tuple[str, ...] = ()  # "package.module:function", each called with every new InboundMessage
    max_body_bytes: int = 40 * 1048576  # vendors forward messages of up to 30-35 MB with attachments


@dataclass(frozen=True)
class Settings:
    home: Path
    database: Path | str  # a SQLite file, or a postgresql:// URL shared by many hosts
    config_path: Path | None
    email_vendor: tuple[str, ...] = ("file",)
    sms_vendor: tuple[str, ...] = ("file",)
    payment_vendor: tuple[str, ...] = ("stripe",)
    storage_vendor: str = "local"
    shipping_vendor: str | None = None  # a rate belongs to the vendor that quoted it: one vendor, no chain
    log_retention_days: int = 90
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    retry_policy: RetrySettings = RetrySettings()
    logging: LoggingSettings = LoggingSettings()
    status: StatusSettings = StatusSettings()
    outbox: OutboxSettings = OutboxSettings()
    vendors: Mapping[str, VendorSettings] = field(default_factory=dict)
    webhooks: Mapping[str, WebhookSettings] = field(default_factory=dict)
    inbound: Mapping[str, InboundSettings] = field(default_factory=dict)
    # log rows the database refused wait here (default: beside the SQLite file; for PostgreSQL in ``home``)
    audit_spool: str | None = None
    master_key_file: str | None = (
        None  # key file for the credential master key (else $CONNECTORCTL_MASTER_KEY_FILE, keyring)
    )
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def vendor(self, slug: str) -> VendorSettings:
        """The vendor's section: its options class when configured, else the shared defaults."""
        return self.vendors.get(slug) or VendorSettings()

    def outbox_dir(self) -> Path:
        from connectorctl.adapters.sinks import outbox_dir

        return outbox_dir(self)
