"""Mailgun: the shared contract, form encodings, regions, the domain setting and stats."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from email_contract import PDF, HttpErrorContract, make_settings
from fake_mailgun import API_KEY, DOMAIN, FakeMailgun
from connectorctl.config import VendorSettings
from connectorctl.adapters.email.mailgun import MailgunOptions
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import DeliveryStatus, EmailMessage
from connectorctl.errors import ConfigurationError, UnsupportedFeatureError
from connectorctl.gateway import Connector


class TestMailgunContract(HttpErrorContract):
    slug = "mailgun"
    secret = API_KEY

    def make_fake(self) -> FakeMailgun:
        return FakeMailgun()

    def vendor_settings(self, fake: FakeMailgun) -> VendorSettings:
        return MailgunOptions(base_url=fake.url, domain=DOMAIN, timeout_seconds=1.0, connect_timeout_seconds=1.0, from_email="shop@example.com")

    def credentials(self) -> dict[str, str]:
        return {"api_key": API_KEY}

    def sends(self, fake: FakeMailgun) -> list[Any]:
        return [r for r in fake.requests if r.path.endswith("/messages")]

    def observed(self, fake: FakeMailgun) -> dict[str, Any]:
        return fake.observed(self.sends(fake)[-1])

    def is_send(self, request: Any) -> bool:
        return request.path.endswith("/messages")

    def test_a_200_without_an_id_is_uncertain_not_failed(self, adapter: Any, fake: FakeMailgun) -> None:
        fake.answer_without_id = True
        result = adapter.send(EmailMessage(to=("a@example.com", "b@example.com"), subject="Hi", text="x"))
        assert not result.ok and {r.status for r in result.recipients} == {DeliveryStatus.UNCERTAIN}
        assert "may be queued" in (result.recipients[0].reason or "")

    def test_urlencoded_without_attachments_multipart_with(self, adapter: Any, fake: FakeMailgun) -> None:
        result = adapter.send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
        assert result.recipients[0].status is DeliveryStatus.QUEUED and result.message_id.endswith(f"@{DOMAIN}>")
        assert fake.requests[-1].content_type == "application/x-www-form-urlencoded"
        adapter.send(EmailMessage(to=("a@example.com",), subject="Hi", text="x", attachments=(PDF,)))
        assert fake.requests[-1].content_type == "multipart/form-data"
        assert fake.violations == []

    def test_more_than_three_tags_are_unsupported(self, adapter: Any, fake: FakeMailgun) -> None:
        with pytest.raises(UnsupportedFeatureError):
            adapter.send(EmailMessage(to=("a@example.com",), subject="Hi", text="x", tags=("a", "b", "c", "d")))
        assert fake.requests == []

    def test_statistics_sum_event_totals(self, adapter: Any, fake: FakeMailgun) -> None:
        stats = adapter.statistics(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 26, tzinfo=timezone.utc))
        assert stats["vendor"] == {"accepted": 10, "delivered": 8, "failed_permanent": 2, "failed_temporary": 0}
        assert fake.requests[-1].query["start"] == ["Sun, 01 Nov 2026 00:00:00 GMT"]
        assert fake.requests[-1].query["event"] == ["accepted", "delivered", "failed"]


@pytest.mark.parametrize(("region", "host"), [(None, "api.mailgun.net"), ("us", "api.mailgun.net"), ("eu", "api.eu.mailgun.net")])
def test_region_picks_the_documented_host(region: str | None, host: str, home: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "<1@mg>", "message": "Queued. Thank you."})

    settings = make_settings(home, "mailgun", MailgunOptions(region=region, domain=DOMAIN, from_email="s@example.com"))
    with Connector(settings, transports={"mailgun": httpx.MockTransport(handler)},
                   credentials=StaticCredentialProvider({"mailgun": {"api_key": API_KEY}})) as c:
        assert c.adapter("mailgun", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x")).ok
    assert str(seen[0].url) == f"https://{host}/v3/{DOMAIN}/messages"


def test_a_missing_domain_is_a_configuration_error(home: Any) -> None:
    settings = make_settings(home, "mailgun", VendorSettings(from_email="s@example.com"))
    with Connector(settings, credentials=StaticCredentialProvider({"mailgun": {"api_key": API_KEY}})) as c:
        with pytest.raises(ConfigurationError, match="domain"):
            c.adapter("mailgun", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
