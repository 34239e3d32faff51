"""Mailchimp Transactional (Mandrill): the shared contract plus per-recipient truth and versions."""

from __future__ import annotations

from typing import Any

import pytest

from email_contract import HttpErrorContract, log_rows, make_settings
from fake_mailchimp import API_KEY, INVALID, REJECTED, FakeMandrill
from connectorctl.config import VendorSettings
from connectorctl.adapters.email.mailchimp import MailchimpOptions
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import DeliveryStatus, EmailMessage
from connectorctl.errors import AuthenticationError, ValidationError
from connectorctl.gateway import Connector


class TestMailchimpContract(HttpErrorContract):
    slug = "mailchimp"
    secret = API_KEY

    def make_fake(self) -> FakeMandrill:
        return FakeMandrill()

    def vendor_settings(self, fake: FakeMandrill) -> VendorSettings:
        return VendorSettings(base_url=fake.url, timeout_seconds=1.0, connect_timeout_seconds=1.0, from_email="shop@example.com")

    def credentials(self) -> dict[str, str]:
        return {"api_key": API_KEY}

    def sends(self, fake: FakeMandrill) -> list[Any]:
        return [r for r in fake.requests if r.path.endswith(("messages/send.json", "messages/send"))]

    def observed(self, fake: FakeMandrill) -> dict[str, Any]:
        return fake.observed(self.sends(fake)[-1])

    def is_send(self, request: Any) -> bool:
        return request.path.endswith(("messages/send.json", "messages/send"))

    def test_rejected_and_invalid_at_http_200_are_failures_for_those_recipients(self, adapter: Any) -> None:
        result = adapter.send(EmailMessage(to=("ann@example.com", REJECTED, INVALID), subject="Hi", text="x"))
        assert not result.ok
        statuses = {r.recipient: (r.status, r.reason) for r in result.recipients}
        assert statuses == {
            "ann@example.com": (DeliveryStatus.ACCEPTED, None),
            REJECTED: (DeliveryStatus.REJECTED, "hard-bounce"),
            INVALID: (DeliveryStatus.INVALID, None),
        }
        assert result.message_id == result.recipients[0].message_id

    def test_the_key_is_in_the_body_and_never_in_the_log(self, adapter: Any, fake: FakeMandrill, connector: Connector) -> None:
        adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        assert fake.requests[-1].json()["key"] == API_KEY
        row = log_rows(connector)[-1]
        assert API_KEY not in row["request_data"] and '"subject":"Hi"' in row["request_data"]

    def test_bulk_of_same_content_is_one_call_with_private_copies(self, adapter: Any, fake: FakeMandrill) -> None:
        same = [EmailMessage(to=(a,), subject="Sale", text="x") for a in ("a@example.com", REJECTED, "c@example.com")]
        other = EmailMessage(to=("d@example.com",), subject="Other", text="y")
        results = adapter.send_bulk([*same, other])
        assert [r.ok for r in results] == [True, False, True, True]
        assert [r.recipients[0].recipient for r in results] == ["a@example.com", REJECTED, "c@example.com", "d@example.com"]
        assert self.sends_seen(fake) == 2
        grouped = self.sends(fake)[0].json()["message"] if self.sends(fake)[0].json()["message"]["subject"] == "Sale" else self.sends(fake)[1].json()["message"]
        assert [t["email"] for t in grouped["to"]] == ["a@example.com", REJECTED, "c@example.com"]
        assert grouped["preserve_recipients"] is False
        assert len({r.message_id for r in results}) == 4


@pytest.mark.parametrize(("api_version", "path"), [
    (None, "/api/1.3/messages/send.json"),
    ("1.3", "/api/1.3/messages/send.json"),
    ("1.4", "/api/1.4/messages/send"),
    ("1.4.json", "/api/1.4/messages/send.json"),
])
def test_api_version_and_suffix_are_configurable(api_version: str | None, path: str, home: Any) -> None:
    version, _, suffix = path.removeprefix("/api/").partition("/messages/send")
    with FakeMandrill(version=version, suffix=suffix) as fake:
        settings = make_settings(home, "mailchimp", MailchimpOptions(base_url=fake.url, api_version=api_version, from_email="s@example.com"))
        with Connector(settings, credentials=StaticCredentialProvider({"mailchimp": {"api_key": API_KEY}})) as c:
            assert c.adapter("mailchimp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x")).ok
        assert fake.requests[-1].path == path and fake.violations == []


@pytest.mark.parametrize(("kind", "expected"), [("auth", AuthenticationError), ("invalid", ValidationError)])
def test_errors_branch_on_the_name_even_at_http_500(kind: str, expected: type, home: Any) -> None:
    with FakeMandrill(auth_status=500, validation_status=500) as fake:
        settings = make_settings(home, "mailchimp", VendorSettings(base_url=fake.url, from_email="s@example.com"))
        with Connector(settings, credentials=StaticCredentialProvider({"mailchimp": {"api_key": API_KEY}})) as c:
            fake.fail_next(kind)
            with pytest.raises(expected) as info:
                c.adapter("mailchimp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
        assert info.value.http_status == 500 and len(fake.requests) == 1
        assert ("Invalid_Key" if kind == "auth" else "ValidationError") in str(info.value)
