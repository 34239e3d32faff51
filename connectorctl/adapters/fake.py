"""An in-process fake vendor whose failures come from config, for tests and demos.

``fail_kind`` picks what a failure looks like (timeout, connect, 429, 500,
502, 503, 401, 400); ``fail_first`` fails that many calls per process, then
``fail_rate`` fails that share of the rest (seeded by ``seed``); ``latency_ms``
delays every call on the connector's clock.
"""

from __future__ import annotations

import itertools
import random
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, Adapter, EmailAdapter, SmsAdapter
from connectorctl.adapters.context import AdapterContext
from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.sinks import _accepted
from connectorctl.domain.messages import EmailMessage, SendResult, SmsMessage
from connectorctl.errors import (
    AuthenticationError,
    ConnectionFailedError,
    ConnectorError,
    InvalidInputError,
    RateLimitedError,
    ValidationError,
    VendorTimeoutError,
    VendorUnavailableError,
)
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id
from connectorctl.settings import MAX_PERIOD_S, VendorSettings

FAIL_KINDS = ("timeout", "connect", "429", "500", "502", "503", "401", "400")


@dataclass(frozen=True)
class FakeOptions(VendorSettings):
    fail_kind: str | None = None  # timeout, connect, 429, 500, 502, 503, 401 or 400
    fail_rate: float = 0.0  # share of calls (after fail_first) that fail
    fail_first: int = 0  # fail this many calls first, per process
    latency_ms: int = 0  # delay per call, on the connector's clock
    seed: int | None = None  # random seed for fail_rate

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if self.latency_ms / 1000 > MAX_PERIOD_S:
            yield "latency_ms", f"is longer than {MAX_PERIOD_S // 86400} days"
        if not 0 <= self.fail_rate <= 1:
            yield "fail_rate", "must be between 0 and 1"
        if self.latency_ms < 0 or self.fail_first < 0:
            yield "latency_ms", "latency_ms and fail_first must be 0 or more"


def make_failure(kind: str, service: str) -> ConnectorError:
    if kind == "timeout":
        return VendorTimeoutError(f"{service}: no answer within the timeout", service=service)
    if kind == "connect":
        return ConnectionFailedError(f"{service}: connection refused", service=service, vendor_processed=False)
    if kind == "429":
        return RateLimitedError(
            f"{service}: too many requests", service=service, http_status=429, retry_after_seconds=1.0
        )
    if kind in ("500", "502", "503"):
        return VendorUnavailableError(f"{service}: server error {kind}", service=service, http_status=int(kind))
    if kind == "401":
        return AuthenticationError(f"{service}: authentication failed", service=service, http_status=401)
    if kind == "400":
        return ValidationError(f"{service}: bad request", service=service, http_status=400)
    raise InvalidInputError(f"fake vendor: unknown fail_kind {kind!r} (known: {', '.join(FAIL_KINDS)})")


class _FakeBehaviour:
    def __init__(self, adapter: Adapter[FakeOptions]) -> None:
        cfg = adapter.config
        self.adapter = adapter
        self.counter = itertools.count(1)
        self.rng = random.Random(cfg.seed)
        self.lock = threading.Lock()
        if cfg.fail_kind:
            make_failure(cfg.fail_kind, adapter.slug)  # reject an unknown kind up front

    def call(self, payload: dict[str, object]) -> VendorResponse:
        cfg = self.adapter.config
        with self.lock:
            n = next(self.counter)
            fail = bool(cfg.fail_kind) and (
                n <= cfg.fail_first or (cfg.fail_rate > 0 and self.rng.random() < cfg.fail_rate)
            )
        if cfg.latency_ms:
            self.adapter.context.clock.sleep(cfg.latency_ms / 1000)
        if fail:
            raise make_failure(cfg.fail_kind or "500", self.adapter.slug)
        return VendorResponse(None, http_status=200, response_data={"accepted": True, "n": n})


def _describe(adapter: Adapter[FakeOptions]) -> str:
    cfg = adapter.config
    failing = (
        f", failing with {cfg.fail_kind} (first {cfg.fail_first}, rate {cfg.fail_rate:g})" if cfg.fail_kind else ""
    )
    return f"in-process fake vendor: accept the message after {cfg.latency_ms} ms{failing}; nothing leaves this machine"


class FakeEmailAdapter(EmailAdapter[FakeOptions]):
    capabilities = ALL_EMAIL_FEATURES

    def __init__(self, context: AdapterContext[FakeOptions], vendor: Vendor) -> None:
        super().__init__(context, vendor)
        self.behaviour = _FakeBehaviour(self)

    def describe_action(self, message: Any) -> str:
        return _describe(self)

    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        correlation_id = correlation_id or new_id()
        self.require(message)
        message_id = new_id()
        call = Call(
            self.slug,
            "send_email",
            "fake://email/send",
            "POST",
            request_data={"to": list(message.to), "subject": message.subject},
            idempotent=True,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        self.run(call, lambda: self.behaviour.call({"to": message.to}))
        return _accepted(self.slug, message_id, message.recipients, correlation_id)


class FakeSmsAdapter(SmsAdapter[FakeOptions]):
    def __init__(self, context: AdapterContext[FakeOptions], vendor: Vendor) -> None:
        super().__init__(context, vendor)
        self.behaviour = _FakeBehaviour(self)

    def describe_action(self, message: Any) -> str:
        return _describe(self)

    def send(
        self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        correlation_id = correlation_id or new_id()
        message_id = new_id()
        call = Call(
            self.slug,
            "send_sms",
            "fake://sms/send",
            "POST",
            request_data={"to": message.to, "length": len(message.body)},
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        self.run(call, lambda: self.behaviour.call({"to": message.to}))
        return _accepted(self.slug, message_id, (message.to,), correlation_id)


VENDOR = Vendor(
    "fake",
    "in-process fake vendor with configurable failures",
    {"email": FakeEmailAdapter, "sms": FakeSmsAdapter},
    FakeOptions,
    auth=(),
)
