"""Immutable value objects and enums of the reference design.

They are plain frozen dataclasses so that adapters, the pipeline, the store and
the CLI can pass them around without anyone mutating shared state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping


class AuthMethod(str, enum.Enum):
    API_KEY = "api_key"
    BEARER_TOKEN = "bearer_token"
    BASIC_AUTH = "basic_auth"
    OAUTH2 = "oauth2"
    HMAC = "hmac"
    NONE = "none"


class HttpMethod(str, enum.Enum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    SMTP = "SMTP"
    LOCAL = "LOCAL"


class IntegrationStatus(str, enum.Enum):
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    CIRCUIT_OPEN = "circuit_open"


class CircuitState(str, enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Credentials:
    """Ready-to-use secrets for one service; ``repr`` never shows them."""

    service_name: str
    auth_method: AuthMethod
    data: Mapping[str, str] = field(default_factory=dict, repr=False)
    tenant_id: str | None = None
    expires_at: datetime | None = None
    source: str = "store"

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _frozen(self.data))

    def get(self, name: str) -> str:
        return self.data[name]

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class Endpoint:
    url: str
    method: HttpMethod = HttpMethod.POST
    timeout_seconds: float = 30.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", _frozen(self.headers))


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    initial_delay_ms: int = 1000
    multiplier: float = 2.0
    max_delay_ms: int = 30000
    jitter: bool = True
    total_budget_ms: int = 120000

    def delay_ms(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (1 = first retry), without jitter."""
        return min(self.initial_delay_ms * self.multiplier ** (attempt - 1), self.max_delay_ms)


@dataclass(frozen=True)
class RateLimitWindow:
    limit: int
    per_seconds: float


@dataclass(frozen=True)
class RateLimitConfig:
    windows: tuple[RateLimitWindow, ...] = ()
    max_wait_seconds: float = 5.0

    @property
    def enabled(self) -> bool:
        return bool(self.windows)


@dataclass(frozen=True)
class CircuitBreakerState:
    service_name: str
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    opened_at: float | None = None
    open_until: float | None = None
    probe_lease_until: float | None = None
    reason: str | None = None
    updated_by: str | None = None
    updated_at: float | None = None


@dataclass(frozen=True)
class IntegrationLog:
    """One attempt of one vendor call, as written to ``integration_logs``."""

    id: str
    service_name: str
    endpoint: str
    method: str
    status: IntegrationStatus
    duration_ms: int
    attempt_number: int
    created_at: str
    operation: str = ""
    correlation_id: str | None = None
    tenant_id: str | None = None
    http_status_code: int | None = None
    request_data: str | None = None
    response_data: str | None = None
    error_message: str | None = None
    error_code: str | None = None
    direction: str = "outbound"

    def as_row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "service_name": self.service_name,
            "operation": self.operation,
            "endpoint": self.endpoint,
            "method": self.method,
            "status": self.status.value,
            "http_status_code": self.http_status_code,
            "duration_ms": self.duration_ms,
            "request_data": self.request_data,
            "response_data": self.response_data,
            "error_message": self.error_message,
            "error_code": self.error_code,
            "attempt_number": self.attempt_number,
            "correlation_id": self.correlation_id,
            "direction": self.direction,
            "created_at": self.created_at,
        }
