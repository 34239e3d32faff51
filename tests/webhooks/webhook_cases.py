"""Signed-example cases for every scheme, shared by the verifier, property, CLI and receiver tests
(like django-anymail's ``webhook_cases``)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

NOW = 1_800_000_000.0
STANDARD_SECRET = "whsec_" + base64.b64encode(b"standard-webhooks-test-key-32byt").decode()
GENERIC_OPTIONS = {"header": "X-Acme-Signature", "algorithm": "sha512", "encoding": "base64", "prefix": "v1=",
                   "signed_content": "{timestamp}.{id}.{body}", "timestamp_header": "X-Acme-Timestamp", "id_header": "X-Acme-Id"}


def _sendgrid_keys() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    public = base64.b64encode(key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    return private, public


SENDGRID_PRIVATE, SENDGRID_PUBLIC = _sendgrid_keys()
_OTHER_PRIVATE, SENDGRID_OTHER_PUBLIC = _sendgrid_keys()


@dataclass
class Case:
    """One scheme set up with a signing secret, the matching verify secret and a wrong one."""

    name: str
    scheme: str
    body: bytes
    sign_secret: str
    verify_secret: str
    wrong_secret: str
    signature_header: str | None  # None: the signature lives in the body (mailgun)
    malformed: tuple[str, str, str] | None  # header, value, expected reason
    options: dict[str, Any] = field(default_factory=dict)
    timestamped: bool = False
    json_body: bool = True  # re-serialising the body must break the signature

    def verifier(self, **extra: Any) -> Any:
        from connectorctl.webhooks import get_verifier

        return get_verifier(self.scheme, **{**self.options, **extra})

    def signed(self, now: float = NOW, **extra: Any) -> Any:
        return self.verifier(**extra).sign(self.body, self.sign_secret, now=now)


STRIPE_BODY = json.dumps({"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "type": "payment_intent.succeeded",
                          "data": {"object": {"id": "pi_3", "amount": 2000, "currency": "eur"}}}).encode()
MANDRILL_EVENTS = json.dumps([{"event": "send", "_id": "exampleaaaaaaaaaaaaaaaaaaaaaaaaa", "ts": 1800000000, "msg": {"email": "a@example.com"}}])

CASES: list[Case] = [
    Case("stripe", "stripe", STRIPE_BODY, "whsec_stripe_test_secret", "whsec_stripe_test_secret", "whsec_other",
         "Stripe-Signature", ("Stripe-Signature", "v1=abcdef", "malformed_header"), timestamped=True),
    Case("twilio-form", "twilio", b"AccountSid=AC123&MessageSid=SM123&MessageStatus=delivered&To=%2B15551234567&Body=Hi+there",
         "twilio-auth-token", "twilio-auth-token", "other-token", "X-Twilio-Signature",
         ("X-Twilio-Webhooks-Signature-Settings", "key=k1,algorithm=HMAC_MD5", "malformed_header"),
         options={"url": "https://erp.example.com/api/connector/webhooks/twilio?tenant=7"}, json_body=False),
    Case("twilio-json", "twilio", b'{"type":"com.twilio.messaging.message.delivered","data":{"messageSid":"SM1"}}',
         "twilio-auth-token", "twilio-auth-token", "other-token", "X-Twilio-Signature",
         ("X-Twilio-Webhooks-Signature-Settings", "algorithm=SHA3", "malformed_header"),
         options={"url": "https://erp.example.com/api/connector/webhooks/twilio"}),
    Case("sendgrid", "sendgrid", b'[{"email":"a@example.com","event":"delivered","sg_event_id":"ZGVsaXZlcmVk","timestamp":1800000000}]',
         SENDGRID_PRIVATE, SENDGRID_PUBLIC, SENDGRID_OTHER_PUBLIC, "X-Twilio-Email-Event-Webhook-Signature",
         ("X-Twilio-Email-Event-Webhook-Signature", "not base64!", "malformed_header"), timestamped=True),
    Case("mandrill", "mandrill", urlencode({"mandrill_events": MANDRILL_EVENTS}).encode(), "mandrill-webhook-key", "mandrill-webhook-key",
         "other-key", "X-Mandrill-Signature", None, options={"url": "https://erp.example.com/api/connector/webhooks/mandrill"}),
    Case("mailgun", "mailgun", json.dumps({"event-data": {"event": "delivered", "id": "CPgfbmQMTCKtHW6uIWtuVe"}}).encode(),
         "key-mailgun-signing", "key-mailgun-signing", "key-other", None, None, timestamped=True, json_body=False),
    Case("github", "github", b'{"action":"opened","number":1,"zen":"Keep it logically awesome."}', "github-hook-secret",
         "github-hook-secret", "other", "X-Hub-Signature-256", ("X-Hub-Signature-256", "md5=abc", "malformed_header")),
    Case("standard", "standard", b'{"type":"invoice.paid","data":{"id":"in_1"}}', STANDARD_SECRET, STANDARD_SECRET,
         "whsec_" + base64.b64encode(b"another-standard-webhooks-key-32").decode(), "webhook-signature",
         ("webhook-signature", "v2,abc", "malformed_header"), timestamped=True),
    Case("easypost", "easypost", b'{"id":"evt_123","object":"Event","description":"tracker.updated","result":{"status":"delivered"}}',
         "easypost-webhook-secret", "easypost-webhook-secret", "other", "X-Hmac-Signature",
         ("X-Hmac-Signature", "sha256=abc", "malformed_header")),
    Case("postmark", "postmark", b'{"RecordType":"Delivery","MessageID":"883953f4-6105-42a2-a16a-77a8eac79483"}', "hook:s3cret-pass",
         "hook:s3cret-pass", "hook:wrong", "Authorization", ("Authorization", "Bearer abc", "malformed_header"), json_body=False),
    Case("generic", "generic", b'{"type":"order.created","id":42}', "generic-shared-secret", "generic-shared-secret", "other",
         "X-Acme-Signature", ("X-Acme-Signature", "sha512=abc", "malformed_header"), options=dict(GENERIC_OPTIONS), timestamped=True),
]
CASE_IDS = [c.name for c in CASES]



def flip_byte(data: bytes, index: int) -> bytes:
    """``data`` with one byte changed (to another printable byte)."""
    replacement = ord("x") if data[index] != ord("x") else ord("y")
    return data[:index] + bytes([replacement]) + data[index + 1:]


def signed_fields(case: Case, body: bytes) -> Any:
    """What a scheme's signature actually covers in the body (for schemes that do not sign all bytes)."""
    from urllib.parse import parse_qsl

    if case.scheme == "mailgun":
        try:
            sig = json.loads(body).get("signature")
        except (ValueError, AttributeError):
            return None
        return sig
    if case.name == "twilio-form" or case.scheme == "mandrill":
        from connectorctl.webhooks.twilio import signed_string

        # the vendor signs the concatenation name+value of the decoded fields, so "a=1" and "a1=" sign alike
        try:
            return signed_string("", parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict"))
        except (UnicodeDecodeError, ValueError):
            return None
    return body
