"""The shared contract every email adapter passes (subclassed once per vendor, like
django-anymail's ``webhook_cases``).

A subclass names its ``slug``, starts its fake vendor in ``make_fake`` and gives
``observed(fake)``: the last message the vendor received, in one canonical
shape (to, cc, bcc, from, subject, text, html, reply_to, headers, tags,
metadata, attachments).  Every fake refuses ``REJECTED`` the way its vendor
does, so "a rejection is never a success" is checked for each of them.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl.adapters.base import MESSAGE_KEY, SCHEDULING, TEMPLATE
from connectorctl.adapters.sinks import ALL_EMAIL_FEATURES
from connectorctl.config import CircuitBreakerSettings, RetrySettings, Settings, VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import Attachment, EmailMessage
from connectorctl.errors import (
    AuthenticationError,
    ConnectorError,
    UnsupportedFeatureError,
    VendorTimeoutError,
)
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

REJECTED = "blocked@example.org"
SENDER = "shop@example.com"
PDF = Attachment("invoice.pdf", b"%PDF-1.4 fake invoice bytes", "application/pdf")

FULL = EmailMessage(
    to=("ann@example.com", "bob@example.net"),
    subject="Your invoice 42",
    text="Invoice attached.",
    html="<p>Invoice <b>attached</b>.</p>",
    from_email="billing@example.com",
    cc=("cc@example.com",),
    bcc=("audit@example.com",),
    reply_to="help@example.com",
    headers={"X-Order-Id": "42"},
    tags=("invoice",),
    metadata={"order_id": "42"},
    attachments=(PDF,),
)

SIMPLE = EmailMessage(to=("ann@example.com",), subject="Hello", text="Hi Ann")


def make_settings(home: Path, slug: str, vendor: VendorSettings) -> Settings:
    return Settings(
        home=home, database=home / "state.db", config_path=None, email_vendor=(slug,),
        retry_policy=RetrySettings(max_attempts=3, initial_delay_ms=10, jitter=False),
        circuit_breaker=CircuitBreakerSettings(failure_threshold=3, timeout_seconds=60),
        vendors={slug: vendor},
    )


def log_rows(connector: Connector) -> list[dict[str, Any]]:
    flush = getattr(connector, "flush", None)  # the log writer may batch rows
    if flush is not None:
        flush()
    conn = sqlite3.connect(connector.settings.database)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM integration_logs ORDER BY seq")]
    finally:
        conn.close()


class VendorFixtures:
    """The fake vendor (from ``make_fake``, a context manager) and a clock that never sleeps: shared by every contract."""

    def make_fake(self) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def fake(self) -> Iterator[Any]:
        with self.make_fake() as fake:
            yield fake

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()


class EmailContract(VendorFixtures):
    """Behaviour every email adapter must show; not collected itself (no ``Test`` prefix)."""

    slug: str = ""
    secret: str = ""  # the credential value that must never leak
    request_count_per_send = 1

    # -- per vendor ---------------------------------------------------------------
    def vendor_settings(self, fake: Any) -> VendorSettings:
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def observed(self, fake: Any) -> dict[str, Any]:
        raise NotImplementedError

    def sends_seen(self, fake: Any) -> int:
        raise NotImplementedError

    def auth_attempts(self, fake: Any) -> int:
        """How many times the vendor saw our credentials on a send (HTTP: every request)."""
        return self.sends_seen(fake)

    def delivered(self, fake: Any) -> int:
        """Messages the vendor took for delivery; needed by vendors that may retry safely (SMTP)."""
        raise NotImplementedError

    def fail_next(self, fake: Any, kind: str, **options: Any) -> None:
        fake.fail_next(kind, **options)

    # -- fixtures -----------------------------------------------------------------
    @pytest.fixture
    def connector(self, fake: Any, clock: FakeClock, home: Path) -> Iterator[Connector]:
        settings = make_settings(home, self.slug, self.vendor_settings(fake))
        with Connector(settings, clock=clock, credentials=StaticCredentialProvider({self.slug: self.credentials()})) as c:
            yield c

    @pytest.fixture
    def adapter(self, connector: Connector) -> Any:
        return connector.adapter(self.slug, "email")

    # -- the contract -------------------------------------------------------------
    def test_send_text_is_accepted_with_a_vendor_message_id(self, adapter: Any, fake: Any) -> None:
        result = adapter.send(EmailMessage(to=("ann@example.com",), subject="Hello", text="Hi Ann"))
        assert result.ok and result.vendor == self.slug and result.message_id
        assert [(r.recipient, r.status.ok) for r in result.recipients] == [("ann@example.com", True)]
        seen = self.observed(fake)
        assert (seen["to"], seen["subject"], seen["text"], seen["from"]) == (["ann@example.com"], "Hello", "Hi Ann", SENDER)
        assert getattr(fake, "violations", []) == []

    def test_every_option_reaches_the_vendor(self, adapter: Any, fake: Any) -> None:
        result = adapter.send(FULL)
        assert result.ok
        assert {r.recipient for r in result.recipients} == set(FULL.recipients)
        seen = self.observed(fake)
        assert seen["to"] == list(FULL.to) and seen["cc"] == list(FULL.cc) and seen["bcc"] == list(FULL.bcc)
        assert (seen["from"], seen["subject"], seen["text"], seen["html"]) == ("billing@example.com", FULL.subject, FULL.text, FULL.html)
        assert seen["reply_to"] == "help@example.com"
        assert seen["headers"].get("X-Order-Id") == "42"
        assert seen["tags"] == ["invoice"]
        if adapter.askable:  # our message key rides along in the vendor's metadata, beside the caller's
            assert seen["metadata"] == {"order_id": "42", MESSAGE_KEY: result.correlation_id}
        else:
            assert seen["metadata"] == {"order_id": "42"}
        assert seen["attachments"] == [("invoice.pdf", PDF.content, "application/pdf")]
        assert getattr(fake, "violations", []) == []

    def test_a_vendor_that_can_be_asked_finds_a_send_by_our_key_and_only_that_one(self, adapter: Any, fake: Any) -> None:
        if not adapter.askable:
            with pytest.raises(UnsupportedFeatureError):
                adapter.find_sent(SIMPLE, key="01ANYKEY", since=time.time() - 60)
            return
        since = time.time() - 60
        sent = adapter.send(SIMPLE, correlation_id="01OUTBOXKEY000000000000001")
        found = adapter.find_sent(SIMPLE, key="01OUTBOXKEY000000000000001", since=since)
        assert found is not None and found.message_id == sent.message_id
        assert adapter.find_sent(SIMPLE, key="01OUTBOXKEY000000000000002", since=since) is None
        assert getattr(fake, "violations", []) == []

    def test_features_it_cannot_carry_raise_instead_of_being_dropped(self, adapter: Any, fake: Any) -> None:
        for feature in sorted((ALL_EMAIL_FEATURES | {TEMPLATE, SCHEDULING}) - adapter.capabilities):
            message = _message_using(feature)
            assert feature in adapter.unsupported(message)
            with pytest.raises(UnsupportedFeatureError):
                adapter.send(message)
        assert self.sends_seen(fake) == 0

    def test_a_rejected_recipient_is_never_reported_as_sent(self, adapter: Any, fake: Any) -> None:
        try:
            result = adapter.send(EmailMessage(to=(REJECTED,), subject="Hi", text="x"))
        except ConnectorError as exc:
            assert not exc.transient, "a permanent rejection must not fail over"
        else:
            assert not result.ok
            assert [r.recipient for r in result.failed] == [REJECTED]

    def test_bulk_one_failure_does_not_stop_the_others(self, adapter: Any) -> None:
        messages = [EmailMessage(to=(addr,), subject="Bulk", text="x") for addr in ("a@example.com", REJECTED, "c@example.com")]
        results = adapter.send_bulk(messages)
        assert len(results) == 3
        ok = [not isinstance(r, ConnectorError) and r.ok for r in results]
        assert ok == [True, False, True]
        assert results[0].recipients[0].recipient == "a@example.com" and results[2].recipients[0].recipient == "c@example.com"

    def test_auth_failure_is_not_retried_and_does_not_open_the_circuit(self, adapter: Any, fake: Any, connector: Connector) -> None:
        for _ in range(3):  # as many as the circuit's failure threshold
            self.fail_next(fake, "auth")
            with pytest.raises(AuthenticationError) as info:
                adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
            assert self.secret not in str(info.value)
        assert self.auth_attempts(fake) == 3
        assert connector.pipeline.breaker.state(self.slug).state.value == "closed"
        assert adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x")).ok

    def test_a_vendor_outage_is_transient_and_the_send_is_not_repeated(self, adapter: Any, fake: Any) -> None:
        self.fail_next(fake, "unavailable")
        try:
            result = adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        except ConnectorError as exc:
            assert exc.transient  # the failover chain moves on
            assert self.sends_seen(fake) == 1  # the vendor may have acted: never a double send
        else:  # retried only because the failure proved nothing was taken (SMTP 421 before DATA)
            assert result.ok and self.delivered(fake) == 1

    def test_a_hang_past_the_timeout_is_a_timeout(self, adapter: Any, fake: Any) -> None:
        self.fail_next(fake, "hang")
        with pytest.raises(VendorTimeoutError):
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))

    def test_verify_credentials_is_one_harmless_read(self, adapter: Any, fake: Any, connector: Connector) -> None:
        adapter.verify_credentials()
        assert self.sends_seen(fake) == 0
        assert [r["operation"] for r in log_rows(connector)] == ["verify_credentials"]
        self.fail_next(fake, "auth")
        with pytest.raises(AuthenticationError):
            adapter.verify_credentials()

    def test_statistics_has_the_reference_numbers(self, adapter: Any, clock: FakeClock) -> None:
        adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        now = datetime.fromtimestamp(clock.time(), timezone.utc)
        stats = adapter.statistics(now - timedelta(hours=1), now + timedelta(hours=1))
        assert stats["success_count"] == 1 and stats["failure_count"] == 0 and stats["success_rate"] == 100.0
        assert stats["source"] in ("integration_log", "vendor_api+integration_log")

    def test_no_secret_in_log_rows(self, adapter: Any, fake: Any, connector: Connector) -> None:
        adapter.send(FULL)
        self.fail_next(fake, "auth")
        with pytest.raises(AuthenticationError):
            adapter.send(FULL)
        rows = log_rows(connector)
        assert len(rows) >= 2
        assert all(self.secret not in str(row) for row in rows)
        assert all(PDF.content.decode() not in str(row) for row in rows)  # attachment bytes stay out of the log

    def test_validate_address_is_offline_syntax(self, adapter: Any, fake: Any) -> None:
        assert adapter.validate_address("ann@example.com")
        assert not adapter.validate_address("not-an-address")
        assert self.sends_seen(fake) == 0


def _message_using(feature: str) -> EmailMessage:
    options: dict[str, Any] = {
        "cc": {"cc": ("cc@example.com",)}, "bcc": {"bcc": ("bcc@example.com",)}, "reply_to": {"reply_to": "r@example.com"},
        "headers": {"headers": {"X-A": "1"}}, "tags": {"tags": ("t",)}, "metadata": {"metadata": {"k": "v"}},
        "attachments": {"attachments": (PDF,)}, "html": {"html": "<p>x</p>"},
        "template": {"template_id": "welcome", "merge_data": {"name": "Ann"}},
        "send_at": {"send_at": datetime.now(timezone.utc) + timedelta(hours=1)},
    }[feature]
    return EmailMessage(to=("ann@example.com",), subject="Hi", text="x", **options)


class HttpErrorContract(EmailContract):
    """The HTTP status classes, answered by the fake exactly as the vendor documents them."""

    def is_send(self, request: Any) -> bool:
        raise NotImplementedError

    def sends_seen(self, fake: Any) -> int:
        return sum(self.is_send(r) for r in fake.requests)

    def delivered(self, fake: Any) -> int:
        return sum(self.is_send(r) and 200 <= status < 300 for r, status in zip(fake.requests, fake.statuses))

    def test_an_invalid_request_is_a_validation_error_and_not_retried(self, adapter: Any, fake: Any) -> None:
        from connectorctl.errors import ValidationError

        self.fail_next(fake, "invalid")
        with pytest.raises(ValidationError) as info:
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        assert info.value.http_status in (400, 422)
        assert self.sends_seen(fake) == 1

    def test_forbidden_is_an_authentication_error(self, adapter: Any, fake: Any) -> None:
        self.fail_next(fake, "forbidden")
        with pytest.raises(AuthenticationError):
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))

    def test_429_waits_for_retry_after_then_sends_once(self, adapter: Any, fake: Any, clock: FakeClock) -> None:
        self.fail_next(fake, "rate_limited", retry_after=7)
        assert adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x")).ok
        assert self.sends_seen(fake) == 2
        assert clock.sleeps and clock.sleeps[0] >= 7

    def test_429_that_persists_reports_retry_after(self, adapter: Any, fake: Any) -> None:
        from connectorctl.errors import RateLimitedError

        for _ in range(3):
            self.fail_next(fake, "rate_limited", retry_after=4)
        with pytest.raises(RateLimitedError) as info:
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        assert info.value.retry_after_seconds == 4
        assert self.sends_seen(fake) == 3

    def test_a_lasting_503_is_transient_so_the_chain_fails_over(self, adapter: Any, fake: Any) -> None:
        from connectorctl.errors import VendorUnavailableError

        for _ in range(3):
            self.fail_next(fake, "unavailable")
        with pytest.raises(VendorUnavailableError) as info:
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        assert info.value.transient and info.value.http_status == 503
        assert self.delivered(fake) == 0

    def test_a_503_on_a_read_is_retried(self, adapter: Any, fake: Any) -> None:
        self.fail_next(fake, "unavailable")
        adapter.verify_credentials()
        assert len(fake.requests) == 2

    def test_a_500_is_a_transient_vendor_failure(self, adapter: Any, fake: Any) -> None:
        from connectorctl.errors import VendorUnavailableError

        self.fail_next(fake, "server_error")
        with pytest.raises(VendorUnavailableError) as info:
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        assert info.value.transient and info.value.http_status == 500
        assert self.sends_seen(fake) == 1  # the vendor may have acted: a send is never repeated
