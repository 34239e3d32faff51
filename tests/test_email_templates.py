"""Vendor-stored templates and scheduled sends, per vendor, against fakes that check each request
as the vendor documents it and refuse what the vendor refuses (unknown template, too far ahead)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import fake_sendgrid
from email_contract import log_rows
from email_vendors import CASES, DATA, connect, fakes, sends  # noqa: F401 - fakes is a fixture
from fake_vendor_http import FakeVendor
from connectorctl.domain.messages import DeliveryStatus, EmailMessage
from connectorctl.errors import UnsupportedFeatureError, ValidationError


@pytest.mark.parametrize("slug", sorted(CASES))
def test_a_template_send_carries_the_template_and_its_data(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    case, fake = CASES[slug], fakes[slug]
    with connect(home, fakes, (slug,)) as c:
        result = c.email().send(EmailMessage(to=("ann@example.com",), subject="", template_id=case.template, merge_data=DATA))
    assert result.ok and result.vendor == slug and result.message_id
    assert case.template_seen(sends(fake)[-1]) == (case.template, DATA)
    assert fake.violations == []


@pytest.mark.parametrize("slug", sorted(CASES))
def test_an_unknown_template_is_a_permanent_refusal(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    before = len(sends(fakes[slug]))
    with connect(home, fakes, (slug,)) as c:
        with pytest.raises(ValidationError) as info:
            c.email().send(EmailMessage(to=("ann@example.com",), subject="", template_id="no-such-template", merge_data=DATA))
    assert not info.value.transient  # the next vendor has no such template either
    assert len(sends(fakes[slug])) == before + 1 and fakes[slug].violations == []


@pytest.mark.parametrize("slug", sorted(s for s, case in CASES.items() if case.schedule_seen))
def test_a_scheduled_send_reaches_the_vendor_in_its_format(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    when = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(hours=2)
    with connect(home, fakes, (slug,)) as c:
        result = c.email().send(EmailMessage(to=("ann@example.com",), subject="Reminder", text="Due tomorrow", send_at=when))
    assert result.ok and {r.status for r in result.recipients} == {DeliveryStatus.SCHEDULED}
    schedule_seen = CASES[slug].schedule_seen
    assert schedule_seen is not None and schedule_seen(sends(fakes[slug])[-1]) == when.timestamp()
    assert fakes[slug].violations == []


@pytest.mark.parametrize("slug", ["sendgrid", "mailgun"])
def test_a_time_beyond_the_vendors_horizon_is_refused_by_the_vendor(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    with connect(home, fakes, (slug,)) as c:
        with pytest.raises(ValidationError, match="72 hours|3 days"):
            c.email().send(EmailMessage(to=("ann@example.com",), subject="Later", text="x", send_at=datetime.now(timezone.utc) + timedelta(days=5)))


def test_postmark_refuses_scheduling_before_any_request(home: Path, fakes: dict[str, FakeVendor]) -> None:
    before = len(fakes["postmark"].requests)
    with connect(home, fakes, ("postmark",)) as c:
        with pytest.raises(UnsupportedFeatureError, match="postmark skipped: lacks send_at") as info:
            c.email().send(EmailMessage(to=("ann@example.com",), subject="Later", text="x", send_at=datetime.now(timezone.utc) + timedelta(hours=1)))
    assert "no vendor in the chain schedules" in (info.value.hint or "")
    assert len(fakes["postmark"].requests) == before


def test_failover_skips_a_vendor_that_cannot_schedule_and_says_why(home: Path, fakes: dict[str, FakeVendor]) -> None:
    before = len(fakes["postmark"].requests)
    with connect(home, fakes, ("postmark", "sendgrid")) as c:
        result = c.email().send(EmailMessage(to=("ann@example.com",), subject="Later", text="x", send_at=datetime.now(timezone.utc) + timedelta(hours=1)))
        rows = log_rows(c)
    assert result.ok and result.vendor == "sendgrid" and len(fakes["postmark"].requests) == before
    skip = next(r for r in rows if r["service_name"] == "postmark")
    assert skip["error_code"] == "unsupported_feature" and "send_at" in skip["error_message"]


def test_without_a_template_merge_data_fills_placeholders_before_the_vendor(home: Path, fakes: dict[str, FakeVendor]) -> None:
    with connect(home, fakes, ("sendgrid",)) as c:
        assert c.email().send(EmailMessage(to=("ann@example.com",), subject="Hi {{name}}", text="Total {{ total }}",
                                           merge_data={"name": "Ann", "total": "10 EUR"})).ok
    seen = fake_sendgrid.FakeSendGrid.observed(sends(fakes["sendgrid"])[-1])
    assert (seen["subject"], seen["text"]) == ("Hi Ann", "Total 10 EUR")


def test_cli_sends_a_template_with_data_at_a_time(cli, home: Path, tmp_path: Path, fakes: dict[str, FakeVendor],  # type: ignore[no-untyped-def]
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import write_config

    write_config(home, f"email_vendor: sendgrid\nvendors:\n  sendgrid: {{base_url: '{fakes['sendgrid'].url}', from_email: shop@example.com}}\n")
    monkeypatch.setenv("SENDGRID_API_KEY", fake_sendgrid.API_KEY)
    data = tmp_path / "data.json"
    data.write_text(json.dumps(DATA))
    when = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(second=0, microsecond=0)
    result = cli("send", "email", "--to", "ann@example.com", "--template", fake_sendgrid.TEMPLATE_ID, "--data", str(data),
                 "--at", when.strftime("%Y-%m-%dT%H:%MZ"), "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["recipients"][0]["status"] == "scheduled"
    body = sends(fakes["sendgrid"])[-1].json()
    assert (body["template_id"], body["personalizations"][0]["dynamic_template_data"], body["send_at"]) == (
        fake_sendgrid.TEMPLATE_ID, DATA, int(when.timestamp()))
    assert "subject" not in body and "content" not in body

    result = cli("send", "email", "--to", "ann@example.com", "--template", fake_sendgrid.TEMPLATE_ID, "--in", "90m", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert abs(sends(fakes["sendgrid"])[-1].json()["send_at"] - (time.time() + 5400)) < 60


@pytest.mark.parametrize(("args", "needle"), [
    (("--subject", "s", "--body", "b", "--at", "2020-01-01T00:00Z"), "is not in the future"),
    (("--subject", "s", "--body", "b", "--at", "tomorrow"), "invalid --at"),
    (("--subject", "s", "--body", "b", "--in", "2h", "--at", "2099-01-01T00:00Z"), "not both"),
    (("--subject", "s", "--body", "b", "--in", "-2h"), "invalid --in"),
    (("--body", "b"), "give --subject (or --template"),
    (("--template", "t", "--data", "DATA"), "must be a JSON object"),
])
def test_cli_refuses_bad_template_and_schedule_input(cli, tmp_path: Path, args: tuple[str, ...], needle: str) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "list.json"
    data.write_text("[1, 2]")
    result = cli("send", "email", "--to", "ann@example.com", *(str(data) if a == "DATA" else a for a in args))
    assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
