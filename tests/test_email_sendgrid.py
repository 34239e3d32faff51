"""SendGrid adapter: the shared contract against a fake v3 server, plus SendGrid specifics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from email_contract import HttpErrorContract, make_settings
from fake_sendgrid import API_KEY, FakeSendGrid
from connectorctl.config import VendorSettings
from connectorctl.adapters.email.sendgrid import SendGridOptions
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ConfigurationError, RateLimitedError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock


class TestSendGridContract(HttpErrorContract):
    slug = "sendgrid"
    secret = API_KEY

    def make_fake(self) -> FakeSendGrid:
        return FakeSendGrid()

    def vendor_settings(self, fake: FakeSendGrid) -> VendorSettings:
        return VendorSettings(base_url=fake.url, timeout_seconds=1.0, connect_timeout_seconds=1.0, from_email="shop@example.com")

    def credentials(self) -> dict[str, str]:
        return {"api_key": API_KEY}

    def observed(self, fake: FakeSendGrid) -> dict[str, Any]:
        return fake.observed([r for r in fake.requests if r.path == "/v3/mail/send"][-1])

    def is_send(self, request: Any) -> bool:
        return request.path == "/v3/mail/send"

    def test_more_than_ten_categories_are_unsupported(self, adapter: Any, fake: FakeSendGrid) -> None:
        from connectorctl.errors import UnsupportedFeatureError

        with pytest.raises(UnsupportedFeatureError, match="more_than_10_tags"):
            adapter.send(EmailMessage(to=("a@example.com",), subject="Hi", text="x", tags=tuple(f"t{i}" for i in range(11))))
        assert fake.requests == []

    def test_message_id_comes_from_the_x_message_id_header(self, adapter: Any) -> None:
        result = adapter.send(EmailMessage(to=("a@example.com", "b@example.com"), subject="Hi", text="x"))
        assert result.message_id.startswith("sg-")
        assert {r.message_id for r in result.recipients} == {result.message_id}

    def test_rate_limit_reset_header_is_used_without_retry_after(self, adapter: Any, fake: FakeSendGrid, clock: FakeClock) -> None:
        for _ in range(3):
            fake.fail_next("rate_limited", reset=int(clock.time()) + 30)
        with pytest.raises(RateLimitedError) as info:
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        # the first retry waited for the window to reset; the last answer's reset was then already due
        assert clock.sleeps[0] == 30
        assert info.value.retry_after_seconds == 0

    def test_statistics_sum_the_vendor_days(self, adapter: Any, fake: FakeSendGrid) -> None:
        start = datetime(2026, 11, 1, tzinfo=timezone.utc)
        stats = adapter.statistics(start, start + timedelta(days=2))
        assert stats["vendor"] == {"requests": 6, "delivered": 4, "bounces": 2}
        stats_req = [r for r in fake.requests if r.path == "/v3/stats"][-1]
        assert stats_req.query["start_date"] == ["2026-11-01"] and stats_req.query["end_date"] == ["2026-11-03"]

    def test_sandbox_mode_is_truthful_about_not_delivering(self, fake: FakeSendGrid, home: Any) -> None:
        settings = make_settings(home, "sendgrid", SendGridOptions(base_url=fake.url, sandbox=True, from_email="shop@example.com"))
        with Connector(settings, credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as c:
            result = c.adapter("sendgrid", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
        assert result.recipients[0].reason == "sandbox mode: validated, not delivered"
        assert fake.requests[-1].json()["mail_settings"] == {"sandbox_mode": {"enable": True}}


@pytest.mark.parametrize(("region", "host"), [(None, "api.sendgrid.com"), ("eu", "api.eu.sendgrid.com")])
def test_region_picks_the_documented_host(region: str | None, host: str, home: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, headers={"X-Message-Id": "m1"})

    settings = make_settings(home, "sendgrid", SendGridOptions(region=region, from_email="shop@example.com"))
    with Connector(settings, transports={"sendgrid": httpx.MockTransport(handler)},
                   credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as c:
        assert c.adapter("sendgrid", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x")).ok
    assert str(seen[0].url) == f"https://{host}/v3/mail/send"


def test_an_unknown_region_is_a_configuration_error(home: Any) -> None:
    settings = make_settings(home, "sendgrid", SendGridOptions(region="mars"))
    with Connector(settings, credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as c:
        with pytest.raises(ConfigurationError, match="region"):
            c.adapter("sendgrid", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))


def test_an_unreadable_2xx_is_an_error_that_does_not_fail_over(home: Any) -> None:
    from connectorctl.errors import ConnectorError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>maintenance page</html>")  # a proxy answering for the vendor

    settings = make_settings(home, "mailchimp", VendorSettings(from_email="shop@example.com"))
    with Connector(settings, transports={"mailchimp": httpx.MockTransport(handler)},
                   credentials=StaticCredentialProvider({"mailchimp": {"api_key": "k"}})) as c:
        with pytest.raises(ConnectorError, match="unreadable answer") as info:
            c.adapter("mailchimp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
    assert not info.value.transient and info.value.http_status == 200


def test_statistics_keep_our_numbers_when_the_key_cannot_read_vendor_stats(home: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"errors": [{"field": None, "message": "access forbidden"}]})

    settings = make_settings(home, "sendgrid", VendorSettings())
    with Connector(settings, clock=FakeClock(), transports={"sendgrid": httpx.MockTransport(handler)},
                   credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as c:
        start = datetime(2026, 11, 1, tzinfo=timezone.utc)
        stats = c.adapter("sendgrid", "email").statistics(start, start + timedelta(days=1))
    assert stats["source"] == "integration_log" and stats["success_count"] == 0
    assert stats["vendor_error"]["code"] == "auth_failed"
