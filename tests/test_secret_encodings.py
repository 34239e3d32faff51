"""A vendor that echoes our request back leaks the secret in whatever form we sent it.

Twilio gets ``Authorization: Basic base64(sid:token)``, Vonage gets ``api_secret`` percent-encoded in a
form body, Mailgun gets ``base64(api:key)``: none of those forms (nor the raw or JSON-escaped secret)
may reach an exception, a log row, the database file or its WAL, or ``logs`` output.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from fake_sms_vendors import TWILIO_SID, FakeTwilio, FakeVonage
from test_sms_twilio import make_connector

from connectorctl.domain.messages import SmsMessage
from connectorctl.errors import ConnectorError
from connectorctl.redaction import Redactor

# characters that change under percent-encoding, JSON escaping and base64 alignment
TOKEN = 'tw/l+o t0ken="é"&x'
VONAGE_KEY = "vonagekey1"
VONAGE_SECRET = "v0n/age+se cr=t&ÿ"


def forms(user: str, secret: str) -> list[str]:
    return [secret, base64.b64encode(f"{user}:{secret}".encode()).decode(), quote_plus(secret, safe=""), quote(secret, safe=""),
            json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]]


def assert_nowhere(home: Path, texts: list[str], leaks: list[str]) -> None:
    blob = b"".join(p.read_bytes() for p in home.glob("connectorctl.db*"))  # the database and its WAL
    for form in leaks:
        assert form.encode() not in blob, form
        for text in texts:
            assert form not in text, form


@pytest.mark.parametrize("user", ["api", "AC1", "ab", "", "sid-" + "x" * 30])
def test_the_basic_auth_base64_of_any_user_and_the_secret_is_masked(user: str) -> None:
    redactor = Redactor((), [TOKEN])
    header = "Basic " + base64.b64encode(f"{user}:{TOKEN}".encode()).decode()
    echoed = redactor.text(f"you sent {header} and {json.dumps({'t': TOKEN})} and token={quote_plus(TOKEN)}")
    for form in forms(user, TOKEN):
        assert form not in echoed
    assert "***" in echoed


def echoed_send(home: Path, cli, fake_class: type, creds: dict[str, str], sender: str, status: int) -> tuple[list[str], object]:  # type: ignore[no-untyped-def]
    """Send one SMS that the vendor answers with an error quoting our request; every place the error reaches."""
    slug = fake_class.__name__.removeprefix("Fake").lower()
    with fake_class() as fake:
        conn = make_connector(home, slug, fake.url, creds, from_number=sender)
        fake.then(("echo", status))
        with pytest.raises(ConnectorError) as info:
            conn.sms().send(SmsMessage(to="+447911123456", body="x"))
        conn.close()
    shown = cli("logs", "list", "-o", "json")
    row_id = json.loads(shown.stdout)["data"][0]["id"]
    error = f"{info.value} {info.value.to_dict()} {info.value.response_data}"
    return [error, shown.output, cli("logs", "show", row_id, "-o", "json").output], fake.requests[0]


def test_twilio_echoing_the_authorization_header_leaks_nothing(home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    texts, sent = echoed_send(home, cli, FakeTwilio, {"username": TWILIO_SID, "password": TOKEN}, "+14155552000", 401)
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(f"{TWILIO_SID}:{TOKEN}".encode()).decode()
    assert_nowhere(home, texts, forms(TWILIO_SID, TOKEN))


def test_vonage_echoing_its_form_body_leaks_no_percent_encoded_secret(home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    texts, sent = echoed_send(home, cli, FakeVonage, {"username": VONAGE_KEY, "password": VONAGE_SECRET}, "AcmeShop", 400)
    assert quote_plus(VONAGE_SECRET, safe="") in sent.body.decode()  # what the vendor got, and echoed
    assert_nowhere(home, texts, forms(VONAGE_KEY, VONAGE_SECRET) + [VONAGE_KEY])
