"""Postmark: the shared contract, the batch API with per-item ErrorCode, and 422 ErrorCode mapping."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from email_contract import HttpErrorContract, log_rows
from fake_postmark import REJECTED, TOKEN, FakePostmark
from connectorctl.config import VendorSettings
from connectorctl.domain.messages import DeliveryStatus, EmailMessage
from connectorctl.errors import AuthenticationError, UnsupportedFeatureError, ValidationError, VendorRejectedError
from connectorctl.gateway import Connector


class TestPostmarkContract(HttpErrorContract):
    slug = "postmark"
    secret = TOKEN

    def make_fake(self) -> FakePostmark:
        return FakePostmark()

    def vendor_settings(self, fake: FakePostmark) -> VendorSettings:
        return VendorSettings(base_url=fake.url, timeout_seconds=1.0, connect_timeout_seconds=1.0, from_email="shop@example.com")

    def credentials(self) -> dict[str, str]:
        return {"api_key": TOKEN}

    def observed(self, fake: FakePostmark) -> dict[str, Any]:
        last = [r for r in fake.requests if r.path.startswith("/email")][-1]
        body = last.json()
        return fake.observed_item(body[-1] if isinstance(body, list) else body)

    def is_send(self, request: Any) -> bool:
        return request.path.startswith("/email")

    def test_inactive_recipient_422_is_a_per_recipient_rejection(self, adapter: Any) -> None:
        result = adapter.send(EmailMessage(to=("ann@example.com", REJECTED), subject="Hi", text="x"))
        assert not result.ok
        statuses = {r.recipient: r.status for r in result.recipients}
        assert statuses == {REJECTED: DeliveryStatus.REJECTED, "ann@example.com": DeliveryStatus.FAILED}
        assert "ErrorCode 406" in result.recipients[1].reason

    def test_an_inactive_address_is_matched_whole_not_as_a_substring(self, adapter: Any) -> None:
        lookalike = REJECTED[1:]  # "locked@...": a substring of the inactive address, but another mailbox
        result = adapter.send(EmailMessage(to=(lookalike, REJECTED), subject="Hi", text="x"))
        statuses = {r.recipient: r.status for r in result.recipients}
        assert statuses == {REJECTED: DeliveryStatus.REJECTED, lookalike: DeliveryStatus.FAILED}

    def test_bulk_uses_one_batch_call_and_trusts_each_item(self, adapter: Any, fake: FakePostmark, connector: Connector) -> None:
        messages = [EmailMessage(to=(f"user{i}@example.com",), subject=f"n{i}", text="x") for i in range(4)]
        messages.insert(2, EmailMessage(to=(REJECTED,), subject="bad", text="x"))
        results = adapter.send_bulk(messages)
        assert [r.ok for r in results] == [True, True, False, True, True]
        assert results[2].recipients[0].status is DeliveryStatus.REJECTED
        assert [r.path for r in fake.requests] == ["/email/batch"]
        assert [m["Subject"] for m in fake.requests[0].json()] == ["n0", "n1", "bad", "n2", "n3"]
        assert len({r.message_id for r in results if r.ok}) == 4
        assert [row["operation"] for row in log_rows(connector)] == ["send_email_batch"]

    def test_bulk_splits_at_500_and_keeps_order(self, adapter: Any, fake: FakePostmark) -> None:
        messages = [EmailMessage(to=(f"u{i}@example.com",), subject=str(i), text="x") for i in range(501)]
        results = adapter.send_bulk(messages, concurrency=1)
        assert all(r.ok for r in results) and len(results) == 501
        assert [(r.path, len(r.json())) for r in fake.requests[:1]] == [("/email/batch", 500)]
        assert fake.requests[1].path == "/email" and fake.requests[1].json()["To"] == "u500@example.com"  # the rest of one goes alone
        assert results[500].recipients[0].recipient == "u500@example.com"

    def test_a_failed_batch_fails_its_own_messages_only(self, adapter: Any, fake: FakePostmark) -> None:
        fake.fail_next("server_error")
        messages = [EmailMessage(to=(f"u{i}@example.com",), subject=str(i), text="x") for i in range(3)]
        messages.append(EmailMessage(to=("t@example.com",), subject="tags", text="x", tags=("a", "b")))
        results = adapter.send_bulk(messages)
        assert isinstance(results[3], UnsupportedFeatureError)
        assert all(getattr(r, "http_status", None) == 500 for r in results[:3])

    def test_several_tags_are_unsupported_not_dropped(self, adapter: Any, fake: FakePostmark) -> None:
        message = EmailMessage(to=("a@example.com",), subject="Hi", text="x", tags=("a", "b"))
        assert "multiple_tags" in adapter.unsupported(message)
        with pytest.raises(UnsupportedFeatureError):
            adapter.send(message)
        assert fake.requests == []

    @pytest.mark.parametrize(("code", "expected"), [(300, ValidationError), (10, AuthenticationError), (405, VendorRejectedError), (410, ValidationError)])
    def test_422_error_codes_map_onto_the_hierarchy(self, adapter: Any, fake: FakePostmark, code: int, expected: type) -> None:
        fake.fail_next("invalid", code=code, message=f"code {code}")
        with pytest.raises(expected) as info:
            adapter.send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
        assert f"ErrorCode {code}" in str(info.value)

    def test_statistics_come_from_stats_outbound(self, adapter: Any, fake: FakePostmark) -> None:
        stats = adapter.statistics(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 26, tzinfo=timezone.utc))
        assert stats["vendor"]["Sent"] == 10 and stats["vendor"]["Bounced"] == 1
        assert fake.requests[-1].query == {"fromdate": ["2026-11-01"], "todate": ["2026-11-26"]}
