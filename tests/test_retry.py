"""Retry: backoff from the policy, Retry-After as a floor, idempotency rules, time budget."""

from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from connectorctl.config import RetrySettings, load_settings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ConnectionFailedError, RateLimitedError, VendorTimeoutError, VendorUnavailableError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock
from connectorctl.resilience.retry import RetryRunner, is_retryable, retry_after_from_header
from tests.conftest import write_config
from tests.support import Reply, ScriptedVendor

MESSAGE = EmailMessage(to=("a@example.com",), subject="s", text="t")


def connector_for(home: Path, url: str, clock: FakeClock, timeout: float = 2.0, retry: str = "") -> Connector:
    write_config(home, f"""
email_vendor: echo
retry_policy: {{max_attempts: 3, initial_delay_ms: 1000, multiplier: 2.0, max_delay_ms: 30000{retry}}}
vendors:
  echo: {{base_url: "{url}", timeout_seconds: {timeout}, connect_timeout_seconds: 1}}
""")
    return Connector(load_settings(), clock=clock, credentials=StaticCredentialProvider({"echo": {"api_key": "k-123456"}}))


def attempts(connector: Connector) -> list[tuple]:
    connector.flush()
    return connector.db.conn.execute("SELECT attempt_number, status, http_status_code, correlation_id FROM integration_logs ORDER BY seq").fetchall()


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    runner = RetryRunner(RetrySettings(initial_delay_ms=1000, multiplier=2.0, max_delay_ms=5000, jitter=True), FakeClock(), random.Random(1))
    for n, full in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)):
        for _ in range(50):
            delay = runner.backoff_seconds(n)
            assert full / 2 <= delay <= full
    exact = RetryRunner(RetrySettings(jitter=False), FakeClock())
    assert [exact.backoff_seconds(n) for n in (1, 2, 3, 6)] == [1.0, 2.0, 4.0, 30.0]


def test_retry_after_seconds_is_honoured(home: Path, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = connector_for(home, vendor.url, clock)
    vendor.script.extend([Reply(429, {"errors": [{"message": "too many requests"}]}, {"Retry-After": "7"}), Reply(202, {"id": "m1"})])
    result = connector.email().send(MESSAGE)
    assert result.ok and result.message_id == "m1"
    assert clock.sleeps == [pytest.approx(7.0)]  # never earlier than the vendor said (backoff alone would be <= 1 s)
    log = attempts(connector)
    assert [(a, s, h) for a, s, h, _ in log] == [(1, "rate_limited", 429), (2, "success", 202)]
    assert len({c for *_, c in log}) == 1  # one correlation id ties the attempts together


def test_retry_after_http_date_is_honoured(home: Path, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = connector_for(home, vendor.url, clock)
    when = datetime.fromtimestamp(clock.time(), timezone.utc) + timedelta(seconds=12)
    vendor.script.extend([Reply(503, {}, {"Retry-After": format_datetime(when, usegmt=True)}), Reply(200, {"id": "m2"})])
    assert connector.email().send(MESSAGE).ok
    assert clock.sleeps[0] == pytest.approx(12.0, abs=1.0)


def test_retry_after_beyond_the_budget_stops_instead_of_sleeping(home: Path, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = connector_for(home, vendor.url, clock, retry=", total_budget_ms: 10000")
    vendor.default = Reply(429, {}, {"Retry-After": "3600"})
    with pytest.raises(RateLimitedError) as info:
        connector.email().send(MESSAGE)
    assert info.value.retry_after_seconds == 3600
    assert clock.sleeps == [] and len(vendor.requests) == 1


def test_transient_failures_are_retried_up_to_max_attempts(home: Path, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    connector = connector_for(home, vendor.url, clock)
    keyed = EmailMessage(to=("a@example.com",), subject="s", text="t", idempotency_key="k1")
    vendor.default = Reply(502, {})
    with pytest.raises(VendorUnavailableError):
        connector.email().send(keyed)
    assert len(vendor.requests) == 3 and len(clock.sleeps) == 2
    vendor.requests.clear()
    with pytest.raises(VendorUnavailableError):
        connector.email().send(MESSAGE)  # a 502 may hide a processed request: not retried without a key
    assert len(vendor.requests) == 1
    vendor.requests.clear()
    vendor.default = Reply(500, {})  # an internal error may hide a processed request: retried only under a key
    with pytest.raises(VendorUnavailableError):
        connector.email().send(MESSAGE)
    assert len(vendor.requests) == 1


def test_a_500_is_retried_only_for_a_call_with_an_idempotency_key(home: Path, vendor: ScriptedVendor) -> None:
    connector = connector_for(home, vendor.url, FakeClock())
    vendor.script.extend([Reply(500, {}), Reply(202, {"id": "m500"})])
    keyed = EmailMessage(to=("a@example.com",), subject="s", text="t", idempotency_key="k500")
    assert connector.email().send(keyed).message_id == "m500"
    assert [(a, s, h) for a, s, h, _ in attempts(connector)] == [(1, "failed", 500), (2, "success", 202)]
    error = VendorUnavailableError("internal error", http_status=500)
    assert is_retryable(error, idempotent=True, keyed=True)
    assert not is_retryable(error, idempotent=True) and not is_retryable(error, idempotent=False)
    assert not is_retryable(VendorUnavailableError("bad request", http_status=501), idempotent=True, keyed=True)


def test_non_idempotent_call_is_not_retried_after_a_timeout(home: Path, vendor: ScriptedVendor) -> None:
    connector = connector_for(home, vendor.url, FakeClock(), timeout=0.3)
    vendor.default = Reply(200, {"id": "late"}, delay=1.0)
    with pytest.raises(VendorTimeoutError):
        connector.email().send(MESSAGE)  # the vendor may have sent it: retrying could send twice
    assert [s for _, s, _, _ in attempts(connector)] == ["timeout"]
    keyed = EmailMessage(to=("a@example.com",), subject="s", text="t", idempotency_key="order-42")
    with pytest.raises(VendorTimeoutError):
        connector.email().send(keyed)  # with an idempotency key the vendor deduplicates: retry
    assert [s for _, s, _, _ in attempts(connector)] == ["timeout"] * 4


def test_non_idempotent_call_is_retried_when_the_vendor_never_saw_it(home: Path, vendor: ScriptedVendor) -> None:
    clock = FakeClock()
    import socket

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    connector = connector_for(home, f"http://127.0.0.1:{port}", clock)
    with pytest.raises(ConnectionFailedError) as info:
        connector.email().send(MESSAGE)
    assert info.value.vendor_processed is False
    assert len(attempts(connector)) == 3


def test_retry_after_header_parsing() -> None:
    now = 1_800_000_000.0
    assert retry_after_from_header("120", now) == 120.0
    assert retry_after_from_header("Wed, 21 Oct 2026 07:28:00 GMT", now) is not None
    assert retry_after_from_header("soon", now) is None
    assert retry_after_from_header(None, now) is None
    assert not is_retryable(ValueError("x"), idempotent=True)


def test_a_final_untouched_refusal_does_not_hide_an_earlier_attempt_that_may_have_acted() -> None:
    """504 (maybe processed) then 503, 503 (provably not): the caller must see the 504, or it would fail over and act twice."""
    runner = RetryRunner(RetrySettings(max_attempts=3, jitter=False), FakeClock())
    answers = iter([VendorUnavailableError("gateway timeout", http_status=504),
                    VendorUnavailableError("unavailable", http_status=503, vendor_processed=False),
                    VendorUnavailableError("unavailable", http_status=503, vendor_processed=False)])
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise next(answers)

    with pytest.raises(VendorUnavailableError) as info:
        runner.run(attempt, idempotent=False, keyed=True)
    assert len(calls) == 3 and info.value.http_status == 504 and info.value.vendor_processed is None
    assert isinstance(info.value.__cause__, VendorUnavailableError) and info.value.__cause__.http_status == 503
