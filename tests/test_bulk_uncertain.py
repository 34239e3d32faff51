"""A bulk run killed mid-call leaves rows ``uncertain``; the next run asks each vendor that can be asked,
by the row's key, instead of guessing: found -> not sent again, not found -> sent.  A vendor that cannot
be asked keeps the row uncertain for an operator (``--resend-uncertain``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from fake_mailgun import API_KEY as MAILGUN_KEY
from fake_mailgun import DOMAIN, FakeMailgun
from fake_postmark import TOKEN, FakePostmark
from fake_sendgrid import API_KEY as SENDGRID_KEY
from fake_sendgrid import FakeSendGrid
from fake_sms_vendors import TWILIO_SID, TWILIO_TOKEN, VONAGE_KEY, VONAGE_SECRET, FakeTwilio, FakeVonage

from connectorctl.bulk.journal import BatchJournal
from connectorctl.domain.messages import EmailMessage, SmsMessage
from connectorctl.gateway import Connector

BATCH = "b-killed-run"
CHUNK = "01KILLEDRUNCHUNK0000000001"


class Case:
    def __init__(self, slug: str, channel: str, fake: Callable[[], Any], options: str, delivered: Callable[[Any], list[str]]) -> None:
        self.slug, self.channel, self.fake, self.options, self.delivered = slug, channel, fake, options, delivered


def _emails(fake: Any) -> list[str]:
    if isinstance(fake, FakePostmark):
        return [t["Email"] for m in fake.accepted for t in m["To"]]
    if isinstance(fake, FakeSendGrid):
        return [m["to_email"] for m in fake.accepted]
    return [e["recipient"] for e in fake.events]


ASKABLE = [
    Case("postmark", "email", FakePostmark, "credentials: {api_key: 'env:VENDOR_KEY'}", _emails),
    Case("sendgrid", "email", FakeSendGrid, "credentials: {api_key: 'env:VENDOR_KEY'}", _emails),
    Case("mailgun", "email", FakeMailgun, f"domain: {DOMAIN}, credentials: {{api_key: 'env:VENDOR_KEY'}}", _emails),
    Case("twilio", "sms", FakeTwilio, "from_number: '+14155550100', credentials: {username: 'env:VENDOR_USER', password: 'env:VENDOR_KEY'}",
         lambda fake: [m["to"] for m in fake.created]),
]
SECRETS = {"postmark": ("", TOKEN), "sendgrid": ("", SENDGRID_KEY), "mailgun": ("", MAILGUN_KEY), "twilio": (TWILIO_SID, TWILIO_TOKEN),
           "vonage": (VONAGE_KEY, VONAGE_SECRET)}


def setup(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: Case, url: str) -> tuple[Path, str, str]:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(f"{case.channel}_vendor: {case.slug}\nvendors:\n  {case.slug}: {{base_url: '{url}', "
                                      f"from_email: shop@example.com, {case.options}}}\n")
    user, key = SECRETS[case.slug]
    monkeypatch.setenv("VENDOR_KEY", key)
    monkeypatch.setenv("VENDOR_USER", user)
    found, missing = ("found@example.com", "missing@example.com") if case.channel == "email" else ("+14155552671", "+14155552672")
    csv = tmp_path / "to.csv"
    csv.write_text(f"{'email' if case.channel == 'email' else 'phone'}\n{found}\n{missing}\n")
    return csv, found, missing


def killed_run(case: Case, found: str, missing: str) -> None:
    """What a run killed mid-chunk leaves: both rows pending under the chunk's one correlation id (one batch
    call); the vendor took the first row's copy, and the process died before its own log row was committed."""
    with Connector() as connector:
        journal = BatchJournal(connector.db, BATCH, connector.clock.time)
        journal.open(case.channel, "to.csv", 2)
        journal.mark_pending(found, 1, CHUNK)
        journal.mark_pending(missing, 2, CHUNK)
        if case.channel == "email":
            connector.email().send(EmailMessage(to=(found,), subject="Hi", text="Hello"), correlation_id=CHUNK)
        else:
            connector.sms().send(SmsMessage(to=found, body="Hello"), correlation_id=CHUNK)
        connector.flush()
        connector.db.run(lambda c: c.execute("DELETE FROM integration_logs"))


def rerun(cli: Any, case: Case, csv: Path, *extra: str) -> dict[str, Any]:
    text = ["-s", "Hi", "--body", "Hello"] if case.channel == "email" else ["-m", "Hello"]
    r = cli("send", case.channel, "--to-file", str(csv), *text, "--batch-id", BATCH, "--json", *extra)
    return {row["recipient"]: row for row in json.loads(r.stdout)["results"]}


@pytest.mark.parametrize("case", ASKABLE, ids=[c.slug for c in ASKABLE])
def test_an_uncertain_row_is_settled_by_the_vendors_search(home: Path, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch,
                                                          case: Case) -> None:
    with case.fake() as fake:
        csv, found, missing = setup(home, tmp_path, monkeypatch, case, fake.url)
        killed_run(case, found, missing)
        rows = rerun(cli, case, csv)
        assert rows[found]["status"] == "skipped" and f"found at {case.slug} by its key" in rows[found]["error"]
        assert rows[found]["message_id"]  # the vendor's id, from its search
        assert rows[missing]["status"] == "accepted"
        assert sorted(case.delivered(fake)) == sorted([found, missing])  # each exactly once
        again = rerun(cli, case, csv)
        assert {r["status"] for r in again.values()} == {"skipped"} and len(case.delivered(fake)) == 2


def test_a_vendor_that_cannot_be_asked_leaves_the_row_uncertain_until_the_operator_says(home: Path, tmp_path: Path, cli: Any,
                                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case("vonage", "sms", FakeVonage, "from_number: '+14155550100', credentials: {username: 'env:VENDOR_USER', "
                "password: 'env:VENDOR_KEY'}", lambda fake: [r.form["to"] for r in fake.requests])
    with case.fake() as fake:
        csv, found, missing = setup(home, tmp_path, monkeypatch, case, fake.url)
        killed_run(case, found, missing)
        rows = rerun(cli, case, csv)
        assert rows[found]["status"] == rows[missing]["status"] == "uncertain"
        assert "vonage may have sent it and cannot be asked" in rows[found]["error"]
        assert len(fake.requests) == 1  # only the killed run's send: nothing re-sent blindly
        forced = rerun(cli, case, csv, "--resend-uncertain")
        assert {r["status"] for r in forced.values()} == {"accepted"} and len(fake.requests) == 3


@pytest.mark.parametrize("case", ASKABLE[:3], ids=[c.slug for c in ASKABLE[:3]])
def test_every_copy_of_a_batch_call_carries_the_chunk_key_and_is_found_by_key_and_recipient(
        home: Path, tmp_path: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, case: Case) -> None:
    with case.fake() as fake:
        csv, _, _ = setup(home, tmp_path, monkeypatch, case, fake.url)
        csv.write_text("email,name\nann@example.com,Ann\nbob@example.com,Bob\ncid@example.com,Cid\n")
        r = cli("send", "email", "--to-file", str(csv), "-s", "Hi {{name}}", "--body", "Dear {{name}}", "--json")
        rows = json.loads(r.stdout)["results"]
        assert [row["status"] for row in rows] == ["accepted"] * 3
        (chunk,) = {row["correlation_id"] for row in rows}  # one batch call for the three rows
        with Connector() as connector:
            adapter = connector.adapter(case.slug, "email")
            for address in ("ann@example.com", "bob@example.com", "cid@example.com"):
                assert adapter.find_sent(EmailMessage(to=(address,), subject="x", text="y"), key=chunk, since=0) is not None
            assert adapter.find_sent(EmailMessage(to=("eve@example.com",), subject="x", text="y"), key=chunk, since=0) is None
