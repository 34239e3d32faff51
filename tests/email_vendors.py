"""The four HTTP email vendors side by side, for tests that run one scenario against each fake:
how to start it, its credential, a template it stores and how to read back what it received."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import fake_mailchimp
import fake_mailgun
import fake_postmark
import fake_sendgrid
from email_contract import make_settings
from fake_vendor_http import FakeVendor, Recorded
from connectorctl.adapters.email.mailgun import MailgunOptions
from connectorctl.config import VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

DATA = {"name": "Ann", "invoice": {"number": "42", "total": "10.00 EUR"}}


@dataclass(frozen=True)
class Case:
    fake: Callable[[], FakeVendor]
    key: str
    template: str
    options: Callable[[str], VendorSettings]
    template_seen: Callable[[Recorded], tuple[str, Any]]
    schedule_seen: Callable[[Recorded], float] | None  # None: the vendor cannot schedule


def _sendgrid_seen(req: Recorded) -> tuple[str, Any]:
    body = req.json()
    return body["template_id"], body["personalizations"][0]["dynamic_template_data"]


def _mandrill_seen(req: Recorded) -> tuple[str, Any]:
    body = req.json()
    return body["template_name"], {v["name"]: v["content"] for v in body["message"]["global_merge_vars"]}


def _postmark_seen(req: Recorded) -> tuple[str, Any]:
    body = req.json()
    return str(body.get("TemplateAlias", body.get("TemplateId"))), body["TemplateModel"]


def _mailgun_seen(req: Recorded) -> tuple[str, Any]:
    form = req.form()
    return form["template"][0], json.loads(form["h:X-Mailgun-Variables"][0])


def _mandrill_when(req: Recorded) -> float:
    return datetime.strptime(req.json()["send_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


def _options(**extra: Any) -> Callable[[str], VendorSettings]:
    return lambda url: VendorSettings(base_url=url, timeout_seconds=2.0, from_email="shop@example.com", **extra)


CASES = {
    "sendgrid": Case(fake_sendgrid.FakeSendGrid, fake_sendgrid.API_KEY, fake_sendgrid.TEMPLATE_ID, _options(), _sendgrid_seen,
                     lambda r: r.json()["send_at"]),
    "mailchimp": Case(fake_mailchimp.FakeMandrill, fake_mailchimp.API_KEY, fake_mailchimp.TEMPLATE, _options(), _mandrill_seen, _mandrill_when),
    "postmark": Case(fake_postmark.FakePostmark, fake_postmark.TOKEN, "invoice-reminder", _options(), _postmark_seen, None),
    "mailgun": Case(fake_mailgun.FakeMailgun, fake_mailgun.API_KEY, fake_mailgun.TEMPLATE,
                    lambda url: MailgunOptions(base_url=url, domain=fake_mailgun.DOMAIN, timeout_seconds=2.0, from_email="shop@example.com"),
                    _mailgun_seen, lambda r: email.utils.parsedate_to_datetime(r.form()["o:deliverytime"][0]).timestamp()),
}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeVendor]]:
    started = {slug: case.fake() for slug, case in CASES.items()}
    for fake in started.values():
        fake.__enter__()
    yield started
    for fake in started.values():
        fake.__exit__(None, None, None)


def connect(home: Path, fakes: dict[str, FakeVendor], chain: tuple[str, ...]) -> Connector:
    vendors = {slug: CASES[slug].options(fakes[slug].url) for slug in chain}
    settings = replace(make_settings(home, chain[0], vendors[chain[0]]), email_vendor=chain, vendors=vendors)
    creds = StaticCredentialProvider({slug: {"api_key": CASES[slug].key} for slug in chain})
    return Connector(settings, clock=FakeClock(start=time.time()), credentials=creds)


def sends(fake: FakeVendor) -> list[Recorded]:
    return [r for r in fake.requests if "mail/send" in r.path or "messages" in r.path or r.path.startswith("/email")]
