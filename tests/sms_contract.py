"""The shared contract every SMS adapter passes (subclassed once per vendor, like ``email_contract``).

A subclass names its ``slug``, starts its fake vendor in ``make_fake``, gives the
vendor section of the config (``vendor_config``), its ``credentials``, what the
vendor last received (``observed``: to, from, body), how many sends it saw, and
how to script the vendor's next answer (``fail_next`` with one of ``auth``,
``invalid``, ``refused_recipient``, ``rate_limited``, ``unavailable``,
``server_error`` (a 502), ``hang``), each as the vendor documents it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from email_contract import VendorFixtures, log_rows

from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import DeliveryStatus, SmsMessage
from connectorctl.errors import (
    AuthenticationError,
    ConnectorctlError,
    ConnectorError,
    InvalidInputError,
    UnsupportedFeatureError,
    VendorTimeoutError,
    VendorUnavailableError,
)
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

TO = "+14155552671"


class SmsContract(VendorFixtures):
    """Behaviour every SMS adapter must show; not collected itself (no ``Test`` prefix)."""

    slug: str = ""
    secret: str = ""  # a credential value that must never leak

    # -- per vendor ---------------------------------------------------------------
    def vendor_config(self, fake: Any) -> dict[str, Any]:
        """``vendors.<slug>`` of the config file (``base_url`` and the short timeouts are added)."""
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def observed(self, fake: Any) -> dict[str, Any]:
        raise NotImplementedError

    def sends_seen(self, fake: Any) -> int:
        raise NotImplementedError

    def fail_next(self, fake: Any, kind: str, **options: Any) -> None:
        raise NotImplementedError

    # -- fixtures -----------------------------------------------------------------
    @pytest.fixture
    def connector(self, fake: Any, clock: FakeClock, home: Path) -> Iterator[Connector]:
        vendor = {"base_url": fake.url, "timeout_seconds": 1.0, "connect_timeout_seconds": 1.0, **self.vendor_config(fake)}
        path = home / "config.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"sms_vendor": self.slug, "vendors": {self.slug: vendor}}), encoding="utf-8")
        with Connector(config_path=path, clock=clock, credentials=StaticCredentialProvider({self.slug: self.credentials()})) as c:
            yield c

    @pytest.fixture
    def adapter(self, connector: Connector) -> Any:
        return connector.adapter(self.slug, "sms")

    # -- the contract -------------------------------------------------------------
    def test_send_is_accepted_with_a_vendor_message_id(self, connector: Connector, fake: Any) -> None:
        result = connector.sms().send(SmsMessage(to="+1 (415) 555-2671", body="Your code is 1234"))
        assert result.ok and result.vendor == self.slug and result.message_id
        assert [r.recipient for r in result.recipients] == [TO]
        seen = self.observed(fake)
        assert (seen["to"], seen["body"]) == (TO, "Your code is 1234")
        (row,) = log_rows(connector)
        assert (row["operation"], row["status"], row["correlation_id"]) == ("send_sms", "success", result.correlation_id)

    def test_an_invalid_number_or_empty_body_is_refused_before_any_request(self, adapter: Any, fake: Any) -> None:
        for message in (SmsMessage(to="+1 555", body="x"), SmsMessage(to=TO, body="")):
            with pytest.raises(InvalidInputError):
                adapter.send(message)
        assert self.sends_seen(fake) == 0

    def test_a_refused_recipient_is_a_failed_result_never_a_success(self, connector: Connector, fake: Any) -> None:
        self.fail_next(fake, "refused_recipient")
        result = connector.sms().send(SmsMessage(to=TO, body="x"))
        assert not result.ok and result.recipients[0].recipient == TO
        assert result.recipients[0].status in (DeliveryStatus.INVALID, DeliveryStatus.REJECTED) and result.recipients[0].reason
        assert self.sends_seen(fake) == 1

    def test_an_invalid_request_is_permanent_and_sent_once(self, adapter: Any, fake: Any) -> None:
        self.fail_next(fake, "invalid")
        with pytest.raises(ConnectorError) as info:
            adapter.send(SmsMessage(to=TO, body="x"))
        assert not info.value.transient and self.sends_seen(fake) == 1

    def test_auth_failure_is_not_retried_and_does_not_open_the_circuit(self, adapter: Any, fake: Any, connector: Connector) -> None:
        for _ in range(connector.settings.circuit_breaker.failure_threshold):
            self.fail_next(fake, "auth")
            with pytest.raises(AuthenticationError) as info:
                adapter.send(SmsMessage(to=TO, body="x"))
            assert self.secret not in str(info.value)
        assert self.sends_seen(fake) == connector.settings.circuit_breaker.failure_threshold
        assert connector.pipeline.breaker.state(self.slug).state.value == "closed"
        assert adapter.send(SmsMessage(to=TO, body="x")).ok

    def test_rate_limited_waits_for_retry_after_then_sends_once(self, adapter: Any, fake: Any, clock: FakeClock) -> None:
        self.fail_next(fake, "rate_limited", retry_after=3)
        assert adapter.send(SmsMessage(to=TO, body="x")).ok
        assert self.sends_seen(fake) == 2 and max(clock.sleeps) >= 3

    def test_a_503_proves_nothing_was_sent_so_the_chain_may_fail_over(self, adapter: Any, fake: Any) -> None:
        for _ in range(3):
            self.fail_next(fake, "unavailable")
        with pytest.raises(VendorUnavailableError) as info:
            adapter.send(SmsMessage(to=TO, body="x"))
        assert info.value.transient and info.value.http_status == 503

    def test_a_502_is_never_repeated_even_with_an_idempotency_key(self, adapter: Any, fake: Any) -> None:
        for key in (None, "order-7"):  # the vendor never receives a key: a retry could deliver the SMS twice
            self.fail_next(fake, "server_error")
            with pytest.raises(VendorUnavailableError):
                adapter.send(SmsMessage(to=TO, body="x", idempotency_key=key))
        assert self.sends_seen(fake) == 2  # the handset may already have it

    def test_through_the_gateway_an_sms_that_may_have_gone_out_is_uncertain(self, connector: Connector, fake: Any) -> None:
        self.fail_next(fake, "server_error")
        result = connector.sms().send(SmsMessage(to=TO, body="x"))
        (recipient,) = result.recipients
        assert not result.ok and recipient.status is DeliveryStatus.UNCERTAIN and "may have been delivered" in (recipient.reason or "")
        assert self.sends_seen(fake) == 1 and result.correlation_id

    def test_a_hang_past_the_timeout_is_a_timeout_and_not_repeated(self, adapter: Any, fake: Any, connector: Connector) -> None:
        self.fail_next(fake, "hang")
        with pytest.raises(VendorTimeoutError):
            adapter.send(SmsMessage(to=TO, body="x"))
        assert self.sends_seen(fake) == 1 and [r["status"] for r in log_rows(connector)] == ["timeout"]

    def test_an_uncertain_send_is_found_by_asking_the_vendor_where_it_can_be_asked(self, adapter: Any, fake: Any) -> None:
        """Twilio keeps no metadata of ours: a match is the same recipient and body, created since the send began."""
        since = time.time() - 1
        message = SmsMessage(to=TO, body="Your code is 1234")
        if not adapter.askable:
            with pytest.raises(UnsupportedFeatureError):
                adapter.find_sent(message, key="01KEY", since=since)
            return
        assert adapter.find_sent(message, key="01KEY", since=since) is None
        sent = adapter.send(message, correlation_id="01KEY")
        found = adapter.find_sent(message, key="01KEY", since=since)
        assert found is not None and found.message_id == sent.message_id
        assert adapter.find_sent(SmsMessage(to=TO, body="Your code is 9999"), key="01OTHER", since=since) is None
        assert adapter.find_sent(message, key="01KEY", since=time.time() + 3600) is None  # an older identical text is not ours

    def test_verify_credentials_is_one_harmless_read(self, adapter: Any, fake: Any, connector: Connector) -> None:
        assert adapter.verify_credentials().http_status == 200
        assert self.sends_seen(fake) == 0
        assert [r["operation"] for r in log_rows(connector)] == ["verify_credentials"]

    def test_check_balance_keeps_the_amount_exact(self, connector: Connector, fake: Any) -> None:
        balance = connector.sms().check_balance()
        assert balance["vendor"] == self.slug and isinstance(balance["balance"], str) and balance["currency"]
        assert self.sends_seen(fake) == 0

    def test_bulk_one_failure_does_not_stop_the_others(self, connector: Connector, fake: Any) -> None:
        messages = [SmsMessage(to=TO, body="one"), SmsMessage(to="+1 555", body="bad number"), SmsMessage(to=TO, body="three")]
        results = connector.sms().send_bulk(messages, concurrency=1)
        assert [not isinstance(r, ConnectorctlError) and r.ok for r in results] == [True, False, True]
        assert isinstance(results[1], InvalidInputError) and self.sends_seen(fake) == 2

    def test_no_secret_in_log_rows_or_the_dry_run(self, adapter: Any, fake: Any, connector: Connector) -> None:
        adapter.send(SmsMessage(to=TO, body="hello"))
        self.fail_next(fake, "auth")
        with pytest.raises(AuthenticationError):
            adapter.send(SmsMessage(to=TO, body="hello"))
        shown = adapter.preview(SmsMessage(to=TO, body="hello"))
        assert shown["kind"] == "http" and self.sends_seen(fake) == 2
        assert all(self.secret not in str(row) for row in log_rows(connector)) and self.secret not in repr(shown)

    def test_validate_phone_number_refuses_an_impossible_number_offline(self, connector: Connector, fake: Any) -> None:
        assert connector.sms().validate_phone_number("12")["valid"] is False
        assert fake.requests == []
