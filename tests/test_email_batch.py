"""Per-recipient batch sends through each vendor's batch API: one request per chunk of the vendor's
documented maximum, each recipient's own copy and merge data, each recipient's own result."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import fake_mailchimp
import fake_postmark
import fake_sendgrid
from email_contract import log_rows
from email_vendors import CASES, connect, fakes, sends  # noqa: F401 - fakes is a fixture
from fake_vendor_http import FakeVendor
from connectorctl.domain.messages import DeliveryStatus, EmailMessage
from connectorctl.errors import ConnectorctlError

NAMES = {"ann@example.com": "Ann", "bob@example.net": "Bob", "cyd@example.org": "Cyd"}


def inline(address: str, name: str) -> EmailMessage:
    return EmailMessage(to=(address,), subject="Hi {{name}}", text="Your total, {{ name }}: {{total}}", html="<p>{{name}}</p>",
                        merge_data={"name": name, "total": f"{len(name)}.00 EUR"})


@pytest.mark.parametrize("slug", sorted(CASES))
def test_inline_merge_data_goes_in_one_request_and_reads_as_if_sent_alone(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    fake = fakes[slug]
    before = len(sends(fake))
    messages = [inline(a, n) for a, n in NAMES.items()]
    with connect(home, fakes, (slug,)) as c:
        results = c.email().send_bulk(messages)
        rows = log_rows(c)
    assert [r.recipients[0].recipient for r in results] == list(NAMES) and all(r.ok for r in results)
    assert len(sends(fake)) == before + 1 and fake.violations == []
    copies = {copy["to"][0]: copy for copy in type(fake).copies(sends(fake)[-1])}
    for message in messages:
        alone = message.filled()
        assert (copies[message.to[0]]["subject"], copies[message.to[0]]["text"], copies[message.to[0]]["html"]) == (alone.subject, alone.text, alone.html)
    assert [r["operation"] for r in rows] == ["send_email_batch"] and rows[0]["correlation_id"] == results[0].correlation_id


@pytest.mark.parametrize("slug", ["sendgrid", "mailchimp", "postmark"])
def test_template_batch_carries_each_recipients_data(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    fake, template = fakes[slug], CASES[slug].template
    messages = [EmailMessage(to=(a,), subject="", template_id=template, merge_data={"name": n, "order": {"id": i}})
                for i, (a, n) in enumerate(NAMES.items())]
    with connect(home, fakes, (slug,)) as c:
        results = c.email().send_bulk(messages)
    assert all(r.ok for r in results) and fake.violations == []
    copies = {copy["to"][0]: copy["data"] for copy in type(fake).copies(sends(fake)[-1])}
    assert copies == {m.to[0]: dict(m.merge_data) for m in messages}


def test_mailgun_batches_template_sends_that_share_their_data(home: Path, fakes: dict[str, FakeVendor]) -> None:
    fake, template = fakes["mailgun"], CASES["mailgun"].template
    before = len(sends(fake))
    shared = [EmailMessage(to=(a,), subject="", template_id=template, merge_data={"promo": "WINTER"}) for a in NAMES]
    own = [EmailMessage(to=("dee@example.com",), subject="", template_id=template, merge_data={"promo": "VIP"})]
    with connect(home, fakes, ("mailgun",)) as c:
        assert all(r.ok for r in c.email().send_bulk(shared + own))
    batch, single = sorted(sends(fake)[before:], key=lambda r: "recipient-variables" not in r.form())  # sent concurrently
    assert sorted(batch.form()["to"]) == sorted(NAMES) and json.loads(batch.form()["h:X-Mailgun-Variables"][0]) == {"promo": "WINTER"}
    assert single.form()["to"] == ["dee@example.com"] and "recipient-variables" not in single.form()


@pytest.mark.parametrize("slug", ["mailchimp", "postmark"])
def test_a_refused_recipient_fails_alone_inside_one_batch_call(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    fake = fakes[slug]
    before = len(sends(fake))
    messages = [inline(a, n) for a, n in NAMES.items()]
    messages.insert(1, inline(fake_mailchimp.REJECTED, "Blocked"))
    with connect(home, fakes, (slug,)) as c:
        results = c.email().send_bulk(messages)
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[1].recipients[0].status is DeliveryStatus.REJECTED
    assert len({r.message_id for r in results}) == 4 and len(sends(fake)) == before + 1


@pytest.mark.parametrize("slug", ["sendgrid", "mailgun"])
def test_a_batch_refused_as_a_whole_is_resent_one_by_one_so_only_the_bad_one_fails(slug: str, home: Path, fakes: dict[str, FakeVendor]) -> None:
    fake = fakes[slug]
    before = len(sends(fake))
    messages = [inline(a, n) for a, n in NAMES.items()]
    messages.insert(1, inline(fake_sendgrid.REJECTED, "Blocked"))
    with connect(home, fakes, (slug,)) as c:
        results = c.email().send_bulk(messages)
        rows = log_rows(c)
    assert [isinstance(r, ConnectorctlError) for r in results] == [False, True, False, False]
    assert all(r.ok for r in results if not isinstance(r, ConnectorctlError))
    assert len(sends(fake)) == before + 1 + 4  # the refused batch, then each message alone
    assert [r["operation"] for r in rows] == ["send_email_batch"] + ["send_email"] * 4


def test_chunks_follow_the_vendors_documented_maximum(home: Path, fakes: dict[str, FakeVendor]) -> None:
    fake = fakes["postmark"]
    before = len(sends(fake))
    messages = [EmailMessage(to=(f"u{i}@example.com",), subject="Hi {{n}}", text="x", merge_data={"n": str(i)}) for i in range(1001)]
    with connect(home, fakes, ("postmark",)) as c:
        results = c.email().send_bulk(messages)
    assert all(r.ok for r in results) and [r.recipients[0].recipient for r in results] == [m.to[0] for m in messages]
    assert sorted(len(fake_postmark.FakePostmark.copies(r)) for r in sends(fake)[before:]) == [1, 500, 500]  # sent concurrently
    assert fake.violations == []


def test_a_vendor_outage_sends_the_batch_through_the_next_vendor(home: Path, fakes: dict[str, FakeVendor]) -> None:
    sendgrid, postmark = fakes["sendgrid"], fakes["postmark"]
    sendgrid.fail_next("unavailable", times=3)  # every retry of the batch call
    before = len(sends(postmark))
    messages = [inline(a, n) for a, n in NAMES.items()]
    with connect(home, fakes, ("sendgrid", "postmark")) as c:
        results = c.email().send_bulk(messages)
    assert all(r.ok and r.vendor == "postmark" for r in results)
    assert [c["subject"] for r in sends(postmark)[before:] for c in fake_postmark.FakePostmark.copies(r)] == [f"Hi {n}" for n in NAMES.values()]
    assert len(sends(postmark)) == before + 1  # batched again there


def test_bulk_csv_uses_the_batch_api_and_a_rerun_sends_nothing(cli, home: Path, tmp_path: Path, fakes: dict[str, FakeVendor],  # type: ignore[no-untyped-def]
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import write_config

    fake = fakes["sendgrid"]
    write_config(home, f"email_vendor: sendgrid\nvendors:\n  sendgrid: {{base_url: '{fake.url}', from_email: shop@example.com}}\n")
    monkeypatch.setenv("SENDGRID_API_KEY", fake_sendgrid.API_KEY)
    path = tmp_path / "recipients.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["email", "name"])
        writer.writerows([(f"customer{i}@example.com", f"Customer {i}") for i in range(250)])
    before = len(sends(fake))
    args = ("send", "email", "--to-file", str(path), "--subject", "Invoice for {{name}}", "--body", "Dear {{name}}", "-o", "json")
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["summary"]["accepted"] == 250 and len(sends(fake)) == before + 1
    copies = fake_sendgrid.FakeSendGrid.copies(sends(fake)[-1])
    assert copies[7] == {"to": ["customer7@example.com"], "subject": "Invoice for Customer 7", "text": "Dear Customer 7", "html": None, "data": None}
    again = json.loads(cli(*args).stdout)
    assert again["summary"]["skipped"] == 250 and len(sends(fake)) == before + 1
