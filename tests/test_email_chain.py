"""Real email adapters in a failover chain: skip on a missing feature, move on after a
transient failure, stop on a permanent one; every hop logged under one correlation id."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from email_contract import log_rows
from fake_postmark import TOKEN, FakePostmark
from fake_sendgrid import API_KEY, FakeSendGrid
from connectorctl.config import CircuitBreakerSettings, RetrySettings, Settings, VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ValidationError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

MESSAGE = EmailMessage(to=("ann@example.com",), subject="Order shipped", text="On its way.")


@pytest.fixture
def fakes() -> Iterator[tuple[FakeSendGrid, FakePostmark]]:
    with FakeSendGrid() as sendgrid, FakePostmark() as postmark:
        yield sendgrid, postmark


def connector(home: Path, fakes: tuple[FakeSendGrid, FakePostmark], chain: tuple[str, ...]) -> Connector:
    sendgrid, postmark = fakes
    vendors = {
        "sendgrid": VendorSettings(base_url=sendgrid.url, timeout_seconds=1.0, from_email="shop@example.com"),
        "postmark": VendorSettings(base_url=postmark.url, timeout_seconds=1.0, from_email="shop@example.com"),
    }
    settings = Settings(home=home, database=home / "state.db", config_path=None, email_vendor=chain, vendors=vendors,
                        retry_policy=RetrySettings(initial_delay_ms=10, jitter=False), circuit_breaker=CircuitBreakerSettings())
    creds = StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}, "postmark": {"api_key": TOKEN}})
    return Connector(settings, clock=FakeClock(), credentials=creds)


def test_a_vendor_that_cannot_carry_a_feature_is_skipped(home: Path, fakes: tuple[FakeSendGrid, FakePostmark]) -> None:
    sendgrid, postmark = fakes
    with connector(home, fakes, ("postmark", "sendgrid")) as c:
        result = c.email().send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x", tags=("invoice", "eu")))
    assert result.ok and result.vendor == "sendgrid"
    assert postmark.requests == [] and sendgrid.requests[-1].json()["categories"] == ["invoice", "eu"]


def test_a_transient_failure_fails_over_under_one_correlation_id(home: Path, fakes: tuple[FakeSendGrid, FakePostmark]) -> None:
    sendgrid, postmark = fakes
    sendgrid.fail_next("server_error")
    with connector(home, fakes, ("sendgrid", "postmark")) as c:
        result = c.email().send(MESSAGE)
        rows = log_rows(c)
    assert result.ok and result.vendor == "postmark" and len(postmark.requests) == 1
    assert [(r["service_name"], r["status"]) for r in rows] == [("sendgrid", "failed"), ("postmark", "success")]
    assert len({r["correlation_id"] for r in rows}) == 1 and rows[0]["correlation_id"] == result.correlation_id


def test_a_permanent_rejection_does_not_fail_over(home: Path, fakes: tuple[FakeSendGrid, FakePostmark]) -> None:
    sendgrid, postmark = fakes
    sendgrid.fail_next("invalid")
    with connector(home, fakes, ("sendgrid", "postmark")) as c:
        with pytest.raises(ValidationError):
            c.email().send(MESSAGE)
    assert postmark.requests == []
