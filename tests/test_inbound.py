"""Inbound mail end to end: each vendor's documented inbound payload (with an attachment), signed
the way the vendor signs it, posted to one real ``connectorctl serve`` process; every vendor's
delivery becomes the same normalized message, a redelivery is stored once, a forged one is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import httpx
import pytest
import yaml

from connectorctl.webhooks import get_verifier
from tests.api.test_api_process import Served, start, stop

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3 invoice 42 \x00\xff binary bytes\n"
MESSAGE_ID = "<CAF42.7c1e@mail.example.net>"
BASIC = "inbound:s3cret-pass"
MAILGUN_KEY = "mg-signing-key-0123"
MANDRILL_KEY = "mandrill-webhook-key"
PUBLIC = "https://erp.example.com/api/connector/inbound/{service}"
EXPECTED = {
    "from": "ann@example.net", "from_name": "Ann Sender", "to": ["support@inbound.example.com"], "cc": ["boss@example.net"],
    "subject": "Invoice 42 – März", "text": "Please find the invoice attached.\n", "html": "<p>Please find the invoice attached.</p>",
    "message_id": MESSAGE_ID,
}


@dataclass
class Delivery:
    content: bytes
    headers: dict[str, str]


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]], headers: dict[str, str] | None = None) -> Delivery:
    request = httpx.Request("POST", "http://x", data=fields, files=files)
    return Delivery(request.read(), {"Content-Type": request.headers["Content-Type"], **(headers or {})})


def sendgrid(message_id: str = MESSAGE_ID, auth: str = BASIC) -> Delivery:
    """Inbound Parse (not raw): parsed fields, the raw header block, attachment-info, charsets, files attachment1..N."""
    headers = (f"Received: from mail.example.net by mx.sendgrid.net\nMessage-ID: {message_id}\nFrom: Ann Sender <ann@example.net>\n"
               "To: support@inbound.example.com\nCc: boss@example.net\nSubject: =?utf-8?q?Invoice_42_=E2=80=93_M=C3=A4rz?=\n")
    fields = {
        "headers": headers, "dkim": "{@example.net : pass}", "to": "support@inbound.example.com", "cc": "boss@example.net",
        "from": "Ann Sender <ann@example.net>", "subject": EXPECTED["subject"], "text": EXPECTED["text"], "html": EXPECTED["html"],
        "sender_ip": "192.0.2.10", "spam_report": "Spam detection software ... 0.1 points", "spam_score": "0.1", "SPF": "pass",
        "envelope": json.dumps({"to": ["support@inbound.example.com"], "from": "ann@example.net"}), "attachments": "1",
        "attachment-info": json.dumps({"attachment1": {"filename": "invoice.pdf", "name": "invoice.pdf", "type": "application/pdf"}}),
        "charsets": json.dumps({"to": "UTF-8", "cc": "UTF-8", "html": "UTF-8", "subject": "UTF-8", "from": "UTF-8", "text": "UTF-8"}),
    }
    return _multipart(fields, {"attachment1": ("invoice.pdf", PDF, "application/pdf")}, _basic(auth))


def mailgun(message_id: str = MESSAGE_ID, key: str = MAILGUN_KEY) -> Delivery:
    """A route's forward(): multipart form, message-headers as JSON pairs, files attachment-1..N, signed fields."""
    timestamp, token = str(int(time.time())), hashlib.sha256(message_id.encode() + key.encode()).hexdigest()[:50]
    pairs = [["Received", "from mail.example.net"], ["Message-Id", message_id], ["From", "Ann Sender <ann@example.net>"],
             ["To", "support@inbound.example.com"], ["Cc", "boss@example.net"], ["Subject", EXPECTED["subject"]],
             ["X-Mailgun-Sflag", "No"], ["X-Mailgun-Sscore", "0.1"], ["X-Mailgun-Spf", "Pass"], ["X-Mailgun-Dkim-Check-Result", "Pass"]]
    fields = {
        "recipient": "support@inbound.example.com", "sender": "ann@example.net", "from": "Ann Sender <ann@example.net>",
        "subject": EXPECTED["subject"], "body-plain": EXPECTED["text"], "stripped-text": "Please find the invoice attached.",
        "body-html": EXPECTED["html"], "attachment-count": "1", "message-headers": json.dumps(pairs), "timestamp": timestamp, "token": token,
        "signature": hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest(),
    }
    return _multipart(fields, {"attachment-1": ("invoice.pdf", PDF, "application/pdf")})


def postmark(message_id: str = MESSAGE_ID, auth: str = BASIC) -> Delivery:
    """Postmark's inbound JSON, as in its documented example (FromFull, ToFull, Headers, base64 Attachments)."""
    body = {
        "FromName": "Ann Sender", "MessageStream": "inbound", "From": "ann@example.net",
        "FromFull": {"Email": "ann@example.net", "Name": "Ann Sender", "MailboxHash": ""},
        "To": "support@inbound.example.com", "ToFull": [{"Email": "support@inbound.example.com", "Name": "", "MailboxHash": ""}],
        "Cc": "boss@example.net", "CcFull": [{"Email": "boss@example.net", "Name": "", "MailboxHash": ""}], "Bcc": "", "BccFull": [],
        "OriginalRecipient": "support@inbound.example.com", "Subject": EXPECTED["subject"], "MessageID": "73e6d360-66eb-11e1-8e72-a8904824019b",
        "ReplyTo": "", "MailboxHash": "", "Date": "Fri, 1 Aug 2026 16:45:32 -04:00", "TextBody": EXPECTED["text"], "HtmlBody": EXPECTED["html"],
        "StrippedTextReply": "", "Tag": "",
        "Headers": [{"Name": "X-Spam-Checker-Version", "Value": "SpamAssassin 3.3.1"}, {"Name": "X-Spam-Status", "Value": "No"},
                    {"Name": "X-Spam-Score", "Value": "-0.1"}, {"Name": "Received-SPF", "Value": "Pass (sender SPF authorized) identity=mailfrom"},
                    {"Name": "Message-ID", "Value": message_id}],
        "Attachments": [{"Name": "invoice.pdf", "Content": base64.b64encode(PDF).decode(), "ContentType": "application/pdf",
                         "ContentLength": len(PDF)}],
    }
    return Delivery(json.dumps(body).encode(), {"Content-Type": "application/json", **_basic(auth)})


def mailchimp(message_id: str = MESSAGE_ID, key: str = MANDRILL_KEY) -> Delivery:
    """Mandrill inbound events: mandrill_events=[{event: inbound, msg: {...}}], signed with X-Mandrill-Signature."""
    msg = {
        "raw_msg": "...", "headers": {"Message-Id": message_id, "From": "Ann Sender <ann@example.net>", "To": "support@inbound.example.com",
                                      "Subject": EXPECTED["subject"], "Received": ["from a", "from b"]},
        "text": EXPECTED["text"], "html": EXPECTED["html"], "from_email": "ann@example.net", "from_name": "Ann Sender",
        "to": [["support@inbound.example.com", None]], "cc": [["boss@example.net", None]], "email": "support@inbound.example.com",
        "subject": EXPECTED["subject"], "tags": [], "sender": None, "spam_report": {"score": 0.1, "matched_rules": []},
        "dkim": {"signed": True, "valid": True}, "spf": {"result": "pass", "detail": "sender SPF authorized"},
        "attachments": {"invoice.pdf": {"name": "invoice.pdf", "type": "application/pdf", "content": base64.b64encode(PDF).decode(), "base64": True}},
    }
    body = urlencode({"mandrill_events": json.dumps([{"event": "inbound", "ts": int(time.time()), "msg": msg}])}).encode()
    signed = get_verifier("mandrill", url=PUBLIC.format(service="mailchimp")).sign(body, key)
    return Delivery(signed.body, dict(signed.headers))


def _basic(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


SAMPLES: dict[str, Callable[..., Delivery]] = {"sendgrid": sendgrid, "mailgun": mailgun, "postmark": postmark, "mailchimp": mailchimp}
VERDICTS = {"sendgrid": {"spam_score": "0.1", "spf": "pass", "dkim": "pass"},
            "mailgun": {"spam": "no", "spam_score": "0.1", "spf": "pass", "dkim": "pass"},
            "postmark": {"spam": "no", "spam_score": "-0.1", "spf": "pass"},
            "mailchimp": {"spam_score": "0.1", "spf": "pass", "dkim": "pass"}}


@dataclass
class Inbox:
    server: Served
    home: Path
    hook_log: Path

    def post(self, service: str, delivery: Delivery) -> httpx.Response:
        return httpx.post(f"{self.server.url}/api/connector/inbound/{service}", content=delivery.content, headers=delivery.headers, timeout=30)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbox]:
    home = tmp_path_factory.mktemp("inbound-home")
    config = {"inbound": {
        "sendgrid": {"scheme": "postmark", "secret_env": ["INBOUND_BASIC"], "hooks": ["tests.inbound_hook:record"]},
        "mailgun": {"scheme": "mailgun", "secret_env": ["MAILGUN_SIGNING_KEY"]},
        "postmark": {"scheme": "postmark", "secret_env": ["INBOUND_BASIC"]},
        "mailchimp": {"scheme": "mandrill", "secret_env": ["MANDRILL_WEBHOOK_KEY"], "url": PUBLIC.format(service="mailchimp")},
    }}
    (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    hook_log = home / "hook.jsonl"
    server = start(home, "--workers", "1", env={"INBOUND_BASIC": BASIC, "MAILGUN_SIGNING_KEY": MAILGUN_KEY, "MANDRILL_WEBHOOK_KEY": MANDRILL_KEY,
                                                "INBOUND_HOOK_LOG": str(hook_log)})
    try:
        yield Inbox(server, home, hook_log)
    finally:
        stop(server)


@pytest.fixture
def cli_json(cli: Any, inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    monkeypatch.setenv("CONNECTORCTL_HOME", str(inbox.home))

    def invoke(*args: str) -> Any:
        result = cli(*args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    return invoke


@pytest.mark.parametrize("service", sorted(SAMPLES))
def test_each_vendors_payload_becomes_the_same_stored_message(service: str, inbox: Inbox, cli_json: Callable[..., Any], tmp_path: Path) -> None:
    answer = inbox.post(service, SAMPLES[service]())
    assert answer.status_code == 200, answer.text
    [stored] = answer.json()["stored"]
    shown = cli_json("inbound", "show", stored)
    assert {k: shown[k] for k in EXPECTED} == EXPECTED
    assert shown["service"] == service and shown["verdicts"] == VERDICTS[service]
    assert [(a["filename"], a["content_type"], a["size"]) for a in shown["attachments"]] == [("invoice.pdf", "application/pdf", len(PDF))]
    saved = cli_json("inbound", "save-attachments", stored, "--dir", str(tmp_path / "files"))
    assert [Path(f).read_bytes() for f in saved["files"]] == [PDF]

    again = inbox.post(service, SAMPLES[service]())  # the vendor's retry (freshly signed where it signs)
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "stored": [], "duplicates": 1}
    assert [m["id"] for m in cli_json("inbound", "list", "--service", service)] == [stored]


@pytest.mark.parametrize(("service", "forged", "status"), [
    ("sendgrid", lambda: sendgrid("<forged-1@x>", auth="inbound:guess"), 401),
    ("mailgun", lambda: mailgun("<forged-2@x>", key="not-the-key"), 401),
    ("postmark", lambda: postmark("<forged-3@x>", auth="inbound:guess"), 401),
    ("mailchimp", lambda: mailchimp("<forged-4@x>", key="not-the-key"), 401),
    ("postmark", lambda: Delivery(b'{"Subject": "no sender"}', {"Content-Type": "application/json", **_basic(BASIC)}), 400),
    ("nowhere", lambda: postmark(), 404),
])
def test_a_forged_or_malformed_delivery_is_refused_and_nothing_is_stored(service: str, forged: Callable[[], Delivery], status: int,
                                                                           inbox: Inbox, cli_json: Callable[..., Any]) -> None:
    before = cli_json("inbound", "list", "-n", "500")
    answer = inbox.post(service, forged())
    assert answer.status_code == status, answer.text
    assert "Traceback" not in answer.text and cli_json("inbound", "list", "-n", "500") == before


def test_the_configured_hook_runs_once_per_new_message(inbox: Inbox, cli_json: Callable[..., Any]) -> None:
    first = inbox.post("sendgrid", sendgrid("<hooked@mail.example.net>"))
    inbox.post("sendgrid", sendgrid("<hooked@mail.example.net>"))
    [stored] = first.json()["stored"]
    seen = [json.loads(line) for line in inbox.hook_log.read_text().splitlines()]
    assert [s["id"] for s in seen if s["message_id"] == "<hooked@mail.example.net>"] == [stored]
    assert seen[-1]["attachments"][0]["key"]  # the hook can read the stored attachment through the storage role


def test_a_hook_registered_in_python_gets_the_message(home: Path) -> None:
    from connectorctl.gateway import Connector
    from connectorctl.inbound import InboundMessage, on_inbound
    from connectorctl.inbound.hooks import remove_hook
    from connectorctl.inbound.receiver import InboundReceiver

    (home / "config.yaml").parent.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump({"inbound": {"postmark": {"scheme": "postmark", "secret_env": ["INBOUND_BASIC"]}}}))
    received: list[InboundMessage] = []
    hook = on_inbound(received.append)
    delivery = postmark()
    try:
        with Connector(config_path=home / "config.yaml") as connector, pytest.MonkeyPatch.context() as mp:
            mp.setenv("INBOUND_BASIC", BASIC)
            receiver = InboundReceiver(connector)
            settings = connector.settings.inbound["postmark"]
            status, body = receiver.handle("postmark", settings, delivery.content, list(delivery.headers.items()), "http://127.0.0.1/x")
            duplicate = receiver.handle("postmark", settings, delivery.content, list(delivery.headers.items()), "http://127.0.0.1/x")
            stored = connector.storage().get(received[0].attachments[0].key or "")
    finally:
        remove_hook(hook)
    assert status == 200 and duplicate[1]["status"] == "duplicate"
    assert [m.id for m in received] == body["stored"] and received[0].subject == EXPECTED["subject"] and stored == PDF


def test_cli_refuses_an_unknown_message_id(cli: Any) -> None:
    result = cli("inbound", "show", "01NOSUCHMESSAGE")
    assert result.exit_code == 2 and "no inbound message" in result.stderr and "Traceback" not in result.stderr
