"""SendGrid adapter: the shared contract against a fake v3 server, plus SendGrid specifics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from email_contract import HttpErrorContract, make_settings
from fake_sendgrid import API_KEY, FakeSendGrid
from connectorctl.config import VendorSettings
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
        return VendorSettings(base_url=fake.url, timeout_seconds=0.3, connect_timeout_seconds=0.3, from_email="shop@example.com")

    def credentials(self) -> dict[str, str]:
        return {"api_key": API_KEY}

    def observed(self, fake: FakeSendGrid) -> dict[str, Any]:
        return fake.observed([r for r in fake.requests if r.path == "/v3/mail/send"][-1])

    def sends_seen(self, fake: FakeSendGrid) -> int:
        return sum(r.path == "/v3/mail/send" for r in fake.requests)

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
        settings = make_settings(home, "sendgrid", VendorSettings(base_url=fake.url, sandbox=True, from_email="shop@example.com"))
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

    settings = make_settings(home, "sendgrid", VendorSettings(region=region, from_email="shop@example.com"))
    with Connector(settings, transports={"sendgrid": httpx.MockTransport(handler)},
                   credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as c:
        assert c.adapter("sendgrid", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x")).ok
    assert str(seen[0].url) == f"https://{host}/v3/mail/send"


def test_an_unknown_region_is_a_configuration_error(home: Any) -> None:
    settings = make_settings(home, "sendgrid", VendorSettings(region="mars"))
    with Connector(settings, credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as c:
        with pytest.raises(ConfigurationError, match="region"):
            c.adapter("sendgrid", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
