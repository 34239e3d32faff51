"""End to end, per vendor: a real send to a local fake vendor, the vendor's documented delivery
reports signed with its scheme and posted to a real ``connectorctl serve`` process, then the
timeline, the suppression list and the rates as a user reads them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import yaml
from fake_mailchimp import API_KEY as MANDRILL_KEY, FakeMandrill
from fake_mailgun import API_KEY as MAILGUN_KEY, DOMAIN as MAILGUN_DOMAIN, FakeMailgun
from fake_postmark import TOKEN as POSTMARK_TOKEN, FakePostmark
from fake_sendgrid import API_KEY as SENDGRID_KEY, FakeSendGrid
from fake_sms_vendors import TWILIO_SID, TWILIO_TOKEN, VONAGE_KEY, VONAGE_SECRET, FakeTwilio, FakeVonage

from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage, SmsMessage
from connectorctl.errors import SuppressedError
from connectorctl.gateway import Connector
from connectorctl.webhooks import get_verifier
from tests.api.test_api_process import Served, start, stop
from tests.delivery.vendor_payloads import BUILDERS
from tests.webhooks.webhook_cases import SENDGRID_PRIVATE, SENDGRID_PUBLIC

pytestmark = pytest.mark.slow
PUBLIC = "https://erp.example.com/api/connector/webhooks/{slug}"


@dataclass(frozen=True)
class Vendor:
    slug: str
    scheme: str
    channel: str
    fake: Callable[[], Any]
    creds: dict[str, str]
    verify_secret: str  # what `serve` is configured with
    sign_secret: str  # what the vendor signs with
    settings: dict[str, Any]
    final: str  # the furthest state the documented "delivered" report leads to
    earlier: str  # the label of the step before it

    @property
    def email(self) -> bool:
        return self.channel == "email"

    def recipients(self) -> tuple[str, str]:
        return ("ann@example.com", "bob@example.com") if self.email else ("+14155552671", "+14155552672")


VENDORS = [
    Vendor("sendgrid", "sendgrid", "email", FakeSendGrid, {"api_key": SENDGRID_KEY}, SENDGRID_PUBLIC, SENDGRID_PRIVATE, {}, "delivered", "deferred"),
    Vendor("mailgun", "mailgun", "email", FakeMailgun, {"api_key": MAILGUN_KEY}, "mg-signing-key", "mg-signing-key", {"domain": MAILGUN_DOMAIN},
           "delivered", "bounced (soft)"),
    Vendor("postmark", "postmark", "email", FakePostmark, {"api_key": POSTMARK_TOKEN}, "hook:s3cret-pass", "hook:s3cret-pass", {}, "delivered",
           "bounced (soft)"),
    Vendor("mailchimp", "mandrill", "email", FakeMandrill, {"api_key": MANDRILL_KEY}, "mandrill-webhook-key", "mandrill-webhook-key", {},
           "opened", "deferred"),
    Vendor("twilio", "twilio", "sms", FakeTwilio, {"username": TWILIO_SID, "password": TWILIO_TOKEN}, TWILIO_TOKEN, TWILIO_TOKEN,
           {"from_number": "+14155552000", "status_callback": PUBLIC.format(slug="twilio")}, "delivered", "sent"),
    Vendor("vonage", "vonage", "sms", FakeVonage, {"username": VONAGE_KEY, "password": VONAGE_SECRET}, "vonage-signature-secret",
           "vonage-signature-secret", {"from_number": "AcmeShop", "status_callback": PUBLIC.format(slug="vonage")}, "delivered", "sent"),
]


@dataclass
class Setup:
    vendor: Vendor
    fake: Any
    connector: Connector
    server: Served
    sent: dict[str, Any]  # recipient -> SendResult

    def post(self, kind: str, recipient: str, ts: float, n: int) -> httpx.Response:
        result = self.sent[recipient]
        body = BUILDERS[self.vendor.slug](kind, result.recipients[0].message_id, recipient, ts, n)
        signed = get_verifier(self.vendor.scheme, url=PUBLIC.format(slug=self.vendor.slug)).sign(body, self.vendor.sign_secret, now=time.time())
        headers = {"Content-Type": "application/json" if signed.body.lstrip()[:1] in (b"{", b"[") else "application/x-www-form-urlencoded",
                   **signed.headers}
        return httpx.post(f"{self.server.url}/api/connector/webhooks/{self.vendor.slug}", content=signed.body, headers=headers, timeout=30)

    def send(self, recipient: str, *, force: bool = False) -> Any:
        if self.vendor.email:
            return self.connector.email().send(EmailMessage(to=(recipient,), subject="Your order", text="Shipped."), force=force)
        return self.connector.sms().send(SmsMessage(to=recipient, body="Your order shipped."), force=force)

    def sends_seen(self) -> int:
        return len(self.fake.requests)


def stored_types(connector: Connector) -> list[str]:
    return [r[0] for r in connector.db.run(lambda c: c.execute("SELECT event_type FROM delivery_events").fetchall())]


@pytest.fixture
def cli_json(cli: Any) -> Callable[..., Any]:
    def invoke(*args: str) -> Any:
        result = cli(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    return invoke


@pytest.fixture(params=VENDORS, ids=[v.slug for v in VENDORS])
def setup(request: pytest.FixtureRequest, home: Path) -> Iterator[Setup]:
    vendor: Vendor = request.param
    with vendor.fake() as fake:
        config = {
            f"{vendor.channel}_vendor": vendor.slug,
            "vendors": {vendor.slug: {"base_url": fake.url, "timeout_seconds": 2, "from_email": "shop@example.com", **vendor.settings}},
            "webhooks": {vendor.slug: {"scheme": vendor.scheme, "secret_env": ["HOOK_SECRET"], "url": PUBLIC.format(slug=vendor.slug)}},
        }
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        connector = Connector(config_path=home / "config.yaml", credentials=StaticCredentialProvider({vendor.slug: vendor.creds}))
        sent = {r: None for r in vendor.recipients()}
        server = start(home, "--workers", "1", env={"HOOK_SECRET": vendor.verify_secret})
        try:
            ready = Setup(vendor, fake, connector, server, sent)
            for recipient in sent:
                sent[recipient] = ready.send(recipient)
                assert sent[recipient].ok and sent[recipient].recipients[0].message_id
            yield ready
        finally:
            stop(server)
            connector.close()


def test_reports_build_the_timeline_and_suppress_bounced_recipients(setup: Setup, cli: Any, cli_json: Callable[..., Any]) -> None:
    vendor = setup.vendor
    ann, bob = vendor.recipients()
    t0 = time.time()  # the reports come after the send
    answers = [
        setup.post("delivered", ann, t0 + 120, 1),
        setup.post("earlier", ann, t0 + 60, 1),  # arrives late: shown before, but the message stays delivered
        setup.post("delivered", ann, t0 + 120, 1),  # the vendor's retry, freshly signed: stored once
        setup.post("unknown", ann, t0 + 180, 1),  # a type we do not model: kept
        setup.post("hard_bounce", bob, t0 + 90, 2),
    ]
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    assert [a.json()["delivery_events"] for a in answers[:2]] == [{"stored": 1, "duplicate": 0}] * 2
    # a byte-identical retry (Postmark signs nothing) is a duplicate delivery; a re-signed one holds a duplicate event
    assert answers[2].json().get("status") == "duplicate" or answers[2].json()["delivery_events"] == {"stored": 0, "duplicate": 1}

    vendor_id = setup.sent[ann].message_id
    shown = cli_json("messages", "show", vendor_id)
    assert shown["correlation_id"] == setup.sent[ann].correlation_id
    assert cli_json("messages", "show", setup.sent[ann].correlation_id) == shown
    (message,) = shown["messages"]
    assert (message["recipient"], message["vendor"], message["delivery"]) == (ann, vendor.slug, vendor.final.split(" ")[0])
    # Mandrill's only events of other types are account-wide (deny-list syncs): kept, but about no message
    unknown = ["unknown"] if vendor.slug != "mailchimp" else []
    assert stored_types(setup.connector).count("unknown") == 1
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds == ["attempt", "accepted", "event", "event", *(["event"] * len(unknown))]
    events = [e["what"] for e in shown["timeline"] if e["kind"] == "event"]
    if vendor.slug == "twilio":  # no event time in Twilio's callbacks: arrival order
        assert events == [vendor.final, vendor.earlier, *unknown]
    else:
        assert events == [vendor.earlier, vendor.final, *unknown]
        assert [e["at"] for e in shown["timeline"]] == sorted(e["at"] for e in shown["timeline"])

    bounced = cli_json("messages", "show", setup.sent[bob].correlation_id)["messages"][0]
    assert bounced["delivery"] in ("bounced", "undelivered", "failed") and bounced["delivery_reason"]

    rates = {r["vendor"]: r for r in cli_json("metrics", vendor.slug, "--buckets", "0")["delivery"]}[vendor.slug]
    assert (rates["accepted"], rates["tracked"], rates["delivered"], rates["delivery_rate"]) == (2, 2, 1, 50.0)
    api = httpx.get(f"{setup.server.url}/api/connector/delivery", params={"service": vendor.slug}, timeout=30).json()
    assert api["vendors"] == [rates]
    assert httpx.get(f"{setup.server.url}/api/connector/messages/{vendor_id}", timeout=30).json() == shown

    # the hard bounce (email) put bob on the suppression list: refused before any vendor call, unless forced
    if not vendor.email:  # SMS reports carry no bounce class: an operator suppresses a number by hand
        assert cli("suppressions", "add", bob, "--note", "asked by phone").exit_code == 0
    listed = cli_json("suppressions", "list")
    assert [(s["address"], s["reason"], s["vendor"]) for s in listed] == [(bob, "hard bounce", vendor.slug) if vendor.email else (bob, "manual", None)]

    before = setup.sends_seen()
    with pytest.raises(SuppressedError) as refused:
        setup.send(bob)
    assert setup.sends_seen() == before
    expected = f"suppressed: hard bounce at {listed[0]['created_at']} via {vendor.slug}" if vendor.email else "suppressed: manual at"
    assert refused.value.message.startswith(expected)

    args = ("send", "email", "--to", bob, "--subject", "Hi", "--body", "x") if vendor.email else ("send", "sms", "--to", bob, "-m", "x")
    result = cli(*args)
    assert result.exit_code == 1 and "error [suppressed]: suppressed:" in result.stderr and "--force" in result.stderr
    assert setup.sends_seen() == before

    assert setup.send(bob, force=True).ok and setup.sends_seen() > before
    assert cli("suppressions", "rm", bob, "--yes").exit_code == 0
    assert setup.send(bob).ok


@pytest.mark.parametrize("vendor", [v for v in VENDORS if not v.email], ids=lambda v: v.slug)
def test_sms_sends_ask_for_delivery_reports(vendor: Vendor, home: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured status callback goes with every send; one given for a send (library or CLI) overrides it."""
    with vendor.fake() as fake:
        home.mkdir(parents=True, exist_ok=True)
        refs = {field: f"env:SMS_{field.upper()}" for field in vendor.creds}
        for field, value in vendor.creds.items():
            monkeypatch.setenv(f"SMS_{field.upper()}", value)
        config = {"sms_vendor": vendor.slug, "vendors": {vendor.slug: {"base_url": fake.url, "credentials": refs, **vendor.settings}}}
        (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        per_send, from_cli = "https://erp.example.com/hooks/one-off", "https://erp.example.com/hooks/from-cli"
        with Connector(config_path=home / "config.yaml") as connector:
            connector.sms().send(SmsMessage(to="+14155552671", body="x"))
            connector.sms().send(SmsMessage(to="+14155552671", body="x", status_callback=per_send))
        assert cli("send", "sms", "--to", "+14155552671", "-m", "x", "--status-callback", from_cli).exit_code == 0
        bad = cli("send", "sms", "--to", "+14155552671", "-m", "x", "--status-callback", "erp.example.com/hook")
        assert bad.exit_code == 2 and bad.stderr.startswith("error [invalid_input]: status callback") and "Traceback" not in bad.output
    configured, overridden, by_cli = (r.form for r in fake.requests)  # the bad URL never reached the vendor
    field = "StatusCallback" if vendor.slug == "twilio" else "callback"
    assert (configured[field], overridden[field], by_cli[field]) == (PUBLIC.format(slug=vendor.slug), per_send, from_cli)
    if vendor.slug == "vonage":
        assert configured["status-report-req"] == "1"
