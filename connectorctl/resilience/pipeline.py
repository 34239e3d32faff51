"""The one place where every vendor call gets its resilience and its audit row.

Per attempt, in order: state health (no vendor call while a write of the state
failed: ``store/outage.py``) -> rate limiter -> circuit breaker -> the vendor call ->
one :class:`AttemptRecord` to every hook (the SQLite integration log is the
default hook).  Retries (tenacity) wrap the attempts, so a retry takes a quota
token again and obeys a circuit that opened meanwhile.  Adapters never repeat
any of this: they hand the pipeline a :class:`Call` and a function.
"""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from typing import Any, Callable, NamedTuple, Sequence, TypeVar

from connectorctl.domain.values import IntegrationStatus, RateLimitWindow
from connectorctl.errors import (
    CircuitOpenError,
    ConnectorctlError,
    ConnectorError,
    RateLimitedError,
    StateStoreError,
    VendorTimeoutError,
)
from connectorctl.ids import new_ulid
from connectorctl.redaction import Redactor
from connectorctl.resilience.circuit import CircuitBreaker, Ticket
from connectorctl.resilience.clock import Clock
from connectorctl.resilience.ratelimit import SqliteRateLimiter
from connectorctl.resilience.retry import RetryRunner
from connectorctl.settings import Settings
from connectorctl.store.db import StateDB

T = TypeVar("T")
# An operator's check of a credential (`creds test`) must work against an open circuit and must not open one.
DIAGNOSTIC_OPERATIONS = frozenset({"verify_credentials"})


class Call(NamedTuple):
    """What one logical vendor call is, for limits, breaker, retry and the log.

    A NamedTuple rather than a frozen dataclass: one is built per call on the
    hot path, and a frozen dataclass's ``__init__`` costs several times more.
    """

    service: str
    operation: str
    endpoint: str = ""
    method: str = "POST"
    request_data: Any = None
    idempotent: bool = False
    idempotency_key: str | None = None  # only a key the vendor honours: with one, even a 500 is retried
    tenant_id: str | None = None
    correlation_id: str | None = None
    secrets: tuple[str, ...] = ()
    direction: str = "outbound"

    def __repr__(self) -> str:  # never show the request data or the secrets
        return (
            f"Call(service={self.service!r}, operation={self.operation!r}, endpoint={self.endpoint!r}, "
            f"method={self.method!r})"
        )


class VendorResponse(NamedTuple):
    value: Any
    http_status: int | None = None
    response_data: Any = None

    def __repr__(self) -> str:
        return f"VendorResponse(http_status={self.http_status!r})"


# One encoder, not one per ``json.dumps`` call.  No circular-reference bookkeeping: the redactor has
# already copied the data into a fresh tree (and would have recursed forever on a cycle).
_encode = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False).encode


class Payload:
    """Request/response data, redacted and serialised once, when the log writer reads it
    (the attempts of one call share the request's)."""

    __slots__ = ("_data", "_redactor", "_json", "_done")

    def __init__(self, data: Any, redactor: Redactor) -> None:
        self._data = data
        self._redactor = redactor
        self._json: str | None = None
        self._done = data is None

    def json(self) -> str | None:
        if not self._done:
            data = self._data
            if isinstance(data, (bytes, str)):
                data = {"body": data}
            self._json = _encode(self._redactor.data(data))
            self._data = None
            self._done = True
        return self._json


NO_PAYLOAD = Payload(None, Redactor(()))
BYPASS = Ticket("", bypass=True)


class AttemptRecord(NamedTuple):
    """One immutable record per attempt, handed to every hook.

    ``request``/``response`` are :class:`Payload`s: call ``.json()`` for the
    redacted JSON text.  Nothing in a record is an unredacted secret once read.
    """

    service: str
    operation: str
    endpoint: str
    method: str
    tenant_id: str | None
    correlation_id: str
    attempt: int
    status: IntegrationStatus
    http_status: int | None
    duration_ms: int
    request: Payload
    response: Payload
    error_code: str | None
    error_message: str | None
    started_at: float
    direction: str = "outbound"


Hook = Callable[[AttemptRecord], None]


def status_for(exc: BaseException) -> IntegrationStatus:
    if isinstance(exc, CircuitOpenError):
        return IntegrationStatus.CIRCUIT_OPEN
    if isinstance(exc, RateLimitedError):
        return IntegrationStatus.RATE_LIMITED
    if isinstance(exc, VendorTimeoutError):
        return IntegrationStatus.TIMEOUT
    return IntegrationStatus.FAILED


def scrub(exc: ConnectorctlError, redactor: Redactor) -> None:
    """Mask secrets a vendor echoed back before the error reaches anyone (callers, logs, terminals)."""
    exc.message = redactor.text(exc.message)
    exc.args = (exc.message,)
    if exc.hint:
        exc.hint = redactor.text(exc.hint)
    if isinstance(exc, ConnectorError) and exc.response_data is not None:
        exc.response_data = redactor.data(exc.response_data)


def new_id() -> str:
    return new_ulid()


class Pipeline:
    def __init__(self, settings: Settings, db: StateDB, clock: Clock, hooks: Sequence[Hook] = ()) -> None:
        self.settings = settings
        self.clock = clock
        self.breaker = CircuitBreaker(db, settings.circuit_breaker, clock)
        self.limiter = SqliteRateLimiter(db, clock)
        self.db = db
        self.health = db.health
        self.retry = RetryRunner(settings.retry_policy, clock)
        self.redactor = Redactor(settings.logging.redact_fields)
        self.hooks = list(hooks)
        self._windows: dict[str, tuple[tuple[RateLimitWindow, ...], float]] = {}
        self._store_bodies = settings.logging.store_bodies

    def quota(self, service: str) -> tuple[tuple[RateLimitWindow, ...], float]:
        if service not in self._windows:
            vendor = self.settings.vendor(service)
            windows = tuple(RateLimitWindow(w.limit, w.per_seconds) for w in vendor.rate_limits)
            self._windows[service] = (windows, vendor.rate_limit_max_wait_seconds)
        return self._windows[service]

    def execute(self, call: Call, fn: Callable[[], VendorResponse]) -> VendorResponse:
        correlation_id = call.correlation_id or new_ulid()
        redactor = self.redactor.with_secrets(call.secrets) if call.secrets else self.redactor
        request = (
            Payload(call.request_data, redactor) if self._store_bodies and call.request_data is not None else NO_PAYLOAD
        )
        windows, max_wait = self._windows.get(call.service) or self.quota(call.service)
        started = self.clock.monotonic()
        try:  # the first attempt directly: no closure and no tenacity unless it fails in a way worth retrying
            return self._attempt(call, fn, correlation_id, redactor, request, windows, max_wait, 1)
        except ConnectorctlError as exc:
            if not (
                isinstance(exc, ConnectorError)
                and self.retry.retries(exc, idempotent=call.idempotent, keyed=call.idempotency_key is not None)
            ):
                exc.correlation_id, exc.attempts = correlation_id, 1
                raise
            first = exc
        run = partial(self._attempt, call, fn, correlation_id, redactor, request, windows, max_wait)
        return self._retry(first, started, call, correlation_id, run)

    def _retry(
        self,
        first: ConnectorError,
        started: float,
        call: Call,
        correlation_id: str,
        run: Callable[[int], VendorResponse],
    ) -> VendorResponse:
        """Attempts 2, 3, ... under tenacity; ``run(n)`` makes attempt ``n``."""
        attempt = 1

        def again() -> VendorResponse:
            nonlocal attempt
            attempt += 1
            return run(attempt)

        try:
            return self.retry.resume(
                first, again, started, idempotent=call.idempotent, keyed=call.idempotency_key is not None
            )
        except ConnectorctlError as exc:
            exc.correlation_id = correlation_id
            exc.attempts = attempt
            raise

    def _attempt(
        self,
        call: Call,
        fn: Callable[[], VendorResponse],
        correlation_id: str,
        redactor: Redactor,
        request: Payload,
        windows: tuple[RateLimitWindow, ...],
        max_wait: float,
        attempt: int,
    ) -> VendorResponse:
        """One attempt: state health, quota, circuit, the vendor call, its record to every hook."""
        started = self.clock.time()
        if self.health.down is not None:  # a state write failed: no vendor call until the database is back
            self.health.check(self.db)
        try:
            if windows:
                self.limiter.acquire(call.service, windows, max_wait)
            ticket = self.breaker.before_call(call.service) if call.operation not in DIAGNOSTIC_OPERATIONS else BYPASS
        except ConnectorError as exc:
            self._emit(call, correlation_id, attempt, started, 0, request, redactor, exc=exc)
            raise
        except StateStoreError as exc:
            self.health.mark_down(exc)
            raise
        t0 = time.perf_counter()
        try:
            response = fn()
        except ConnectorError as exc:
            duration = time.perf_counter() - t0
            scrub(exc, redactor)
            if exc.counts_against_circuit:
                self.breaker.record_failure(ticket, f"{exc.code}: {exc.message}")
            else:
                self.breaker.record_success(ticket)  # the vendor answered: it is up
            self._emit(call, correlation_id, attempt, started, duration, request, redactor, exc=exc)
            raise
        except BaseException as exc:  # Ctrl-C mid-call too: the vendor may have acted, so the attempt is audited
            duration = time.perf_counter() - t0
            self._emit(call, correlation_id, attempt, started, duration, request, redactor, exc=exc)
            raise
        duration = time.perf_counter() - t0
        self.breaker.record_success(ticket)
        self._emit(call, correlation_id, attempt, started, duration, request, redactor, response=response)
        return response

    def record_skip(self, call: Call, exc: ConnectorError) -> None:
        """Log a call that was decided against before any attempt (attempt 0), e.g. a failover skip."""
        redactor = self.redactor.with_secrets(call.secrets)
        self._emit(call, call.correlation_id or new_id(), 0, self.clock.time(), 0, NO_PAYLOAD, redactor, exc=exc)

    def _emit(
        self,
        call: Call,
        correlation_id: str,
        attempt: int,
        started: float,
        duration: float,
        request: Payload,
        redactor: Redactor,
        *,
        exc: BaseException | None = None,
        response: VendorResponse | None = None,
    ) -> None:
        if exc is None:
            status, code, message = IntegrationStatus.SUCCESS, None, None
            http_status = response.http_status if response is not None else None
            response_data = response.response_data if response is not None else None
        else:
            status = status_for(exc)
            if isinstance(exc, ConnectorctlError):
                code, message = exc.code, redactor.text(str(exc))
            elif isinstance(exc, KeyboardInterrupt):
                code, message = "interrupted", "interrupted while waiting for the vendor: it may have acted"
            else:
                code, message = "internal_error", redactor.text(f"{type(exc).__name__}: {exc}")
            http_status = getattr(exc, "http_status", None)
            response_data = getattr(exc, "response_data", None)
        record = AttemptRecord(  # positional: this runs once per attempt on the hot path
            call.service,
            call.operation,
            call.endpoint,
            call.method,
            call.tenant_id,
            correlation_id,
            attempt,
            status,
            http_status,
            int(duration * 1000 + 0.5),
            request,
            Payload(response_data, redactor) if self._store_bodies and response_data is not None else NO_PAYLOAD,
            code,
            message,
            started,
            call.direction,
        )
        for hook in self.hooks:
            try:
                hook(record)
            except StateStoreError as err:
                # The vendor call already happened; failing it now would invite a double send.
                print(f"connectorctl: warning: integration log not written: {err}", file=sys.stderr)
