"""The vendors' official SDKs as test-only oracles: their signatures pass ours, ours pass theirs,
and on tampered variants both give the same verdict.  The SDKs are never imported by the product.

The SDKs read the real clock, so these tests sign at ``time.time()`` and pass that as ``now``.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timezone
from urllib.parse import urlencode

import pytest

from connectorctl.webhooks import WebhookRequest, get_verifier
from tests.webhooks.webhook_cases import SENDGRID_PRIVATE, SENDGRID_PUBLIC, STANDARD_SECRET

BODY = json.dumps({"id": "evt_oracle", "type": "charge.succeeded", "data": {"object": {"amount": 1234}}}).encode()


def agree(ours: bool, sdk: bool) -> None:
    assert ours == sdk


# --- Stripe ----------------------------------------------------------------------------------------
def stripe_ok(body: bytes, header: str, secret: str) -> bool:
    import stripe

    try:
        stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)
    except stripe.SignatureVerificationError:
        return False
    return True


def test_stripe_sdk_signatures_pass_ours_and_ours_pass_the_sdk() -> None:
    import stripe

    now, secret = time.time(), "whsec_oracle_stripe"
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret)
    assert get_verifier("stripe").verify(WebhookRequest(BODY, {"Stripe-Signature": header}), [secret], now=now).ok
    ours = get_verifier("stripe").sign(BODY, secret, now=now).headers["Stripe-Signature"]
    assert stripe_ok(BODY, ours, secret)


def test_stripe_verdicts_agree_with_the_sdk() -> None:
    import stripe

    now, secret = time.time(), "whsec_oracle_stripe"
    t = int(now)
    good = stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, timestamp=t)
    sig = good.split("v1=")[1]
    variants = [
        (BODY, good, secret),
        (BODY + b" ", good, secret),
        (BODY, good, "whsec_wrong"),
        (BODY, stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, timestamp=t - 400), secret),
        (BODY, stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, timestamp=t + 400), secret),
        (BODY, f"t={t},v1={'0' * 64},v1={sig}", secret),
        (BODY, f"t={t},v0={sig}", secret),
        (BODY, f"t={t + 1},v1={sig}", secret),
        (json.dumps(json.loads(BODY), indent=2).encode(), good, secret),
    ]
    for body, header, key in variants:
        agree(get_verifier("stripe").verify(WebhookRequest(body, {"Stripe-Signature": header}), [key], now=now).ok, stripe_ok(body, header, key))


# --- Twilio ----------------------------------------------------------------------------------------
URL = "https://erp.example.com/api/connector/webhooks/twilio?tenant=7"
PARAMS = {"MessageSid": "SM123", "MessageStatus": "delivered", "To": "+15551234567", "Body": "Grüße & <b>"}


def test_twilio_sdk_and_ours_agree_on_form_callbacks() -> None:
    from twilio.request_validator import RequestValidator

    token = "twilio-oracle-token"
    sdk = RequestValidator(token)
    body = urlencode(PARAMS).encode()
    sig = sdk.compute_signature(URL, PARAMS)
    assert get_verifier("twilio", url=URL).verify(WebhookRequest(body, {"X-Twilio-Signature": sig}), [token]).ok
    ours = get_verifier("twilio", url=URL).sign(body, token).headers["X-Twilio-Signature"]
    assert sdk.validate(URL, PARAMS, ours)
    variants = [
        (URL, PARAMS, sig), (URL, {**PARAMS, "MessageStatus": "failed"}, sig), (URL.replace("tenant=7", "tenant=8"), PARAMS, sig),
        (URL.replace(".com/", ".com:443/"), PARAMS, sig), (URL, PARAMS, sig[:-2] + "A="), (URL, {**PARAMS, "Extra": ""}, sig),
    ]
    for url, params, signature in variants:
        ours_ok = get_verifier("twilio", url=url).verify(WebhookRequest(urlencode(params).encode(), {"X-Twilio-Signature": signature}), [token]).ok
        agree(ours_ok, sdk.validate(url, params, signature))


def test_twilio_sdk_and_ours_agree_on_json_callbacks_and_sharedkey() -> None:
    import hashlib

    from twilio.request_validator import RequestValidator

    token = "twilio-oracle-token"
    sdk = RequestValidator(token)
    url = "https://erp.example.com/hook?bodySHA256=" + hashlib.sha256(BODY).hexdigest()
    sig = sdk.compute_signature(url, {})
    for body in (BODY, BODY + b"\n"):
        agree(get_verifier("twilio", url=url).verify(WebhookRequest(body, {"X-Twilio-Signature": sig}), [token]).ok, sdk.validate(url, body.decode(), sig))
    ours = get_verifier("twilio", url="https://erp.example.com/hook").sign(BODY, token)
    assert sdk.validate(ours.url, BODY.decode(), ours.headers["X-Twilio-Signature"])
    sha256 = sdk.compute_signature(URL, PARAMS, algorithm="HMAC_SHA256")
    headers = {"X-Twilio-Signature": sha256, "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}
    assert get_verifier("twilio", url=URL).verify(WebhookRequest(urlencode(PARAMS).encode(), headers), [token]).ok


# --- Standard Webhooks -------------------------------------------------------------------------------
def test_standardwebhooks_sdk_and_ours_agree() -> None:
    from standardwebhooks import Webhook, WebhookVerificationError

    sdk = Webhook(STANDARD_SECRET)
    now = time.time()

    def sdk_ok(body: bytes, headers: dict[str, str]) -> bool:
        try:
            sdk.verify(body, headers)
        except (WebhookVerificationError, ValueError):
            return False
        return True

    def sdk_headers(msg_id: str, at: float, body: bytes) -> dict[str, str]:
        sig = sdk.sign(msg_id, datetime.fromtimestamp(at, timezone.utc), body.decode())
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(at)), "webhook-signature": sig}

    headers = sdk_headers("msg_oracle_1", now, BODY)
    assert get_verifier("standard").verify(WebhookRequest(BODY, headers), [STANDARD_SECRET], now=now).ok
    ours = get_verifier("standard").sign(BODY, STANDARD_SECRET, now=now, event_id="msg_ours")
    assert sdk_ok(BODY, dict(ours.headers))
    variants = [
        (BODY, headers), (BODY[:-1], headers), (BODY, {**headers, "webhook-id": "msg_other"}),
        (BODY, sdk_headers("m", now - 400, BODY)), (BODY, sdk_headers("m", now + 400, BODY)),
        (BODY, {**headers, "webhook-signature": "v1a,AAAA " + headers["webhook-signature"]}),
        (BODY, {k: v for k, v in headers.items() if k != "webhook-id"}),
    ]
    for body, hdrs in variants:
        agree(get_verifier("standard").verify(WebhookRequest(body, hdrs), [STANDARD_SECRET], now=time.time()).ok, sdk_ok(body, hdrs))


# --- SendGrid ---------------------------------------------------------------------------------------
def test_sendgrid_sdk_accepts_our_signatures_and_agrees_on_tampering() -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from sendgrid.helpers.eventwebhook import EventWebhook

    sdk = EventWebhook(SENDGRID_PUBLIC)
    body = b'[{"email":"a@example.com","event":"open","sg_event_id":"x1","timestamp":1800000000}]'
    now = time.time()
    signed = get_verifier("sendgrid").sign(body, SENDGRID_PRIVATE, now=now)
    sig = signed.headers["X-Twilio-Email-Event-Webhook-Signature"]
    ts = signed.headers["X-Twilio-Email-Event-Webhook-Timestamp"]
    assert signed.extra["public_key"] == SENDGRID_PUBLIC
    for payload, timestamp in ((body, ts), (body + b" ", ts), (body, str(int(ts) + 1))):
        headers = {"X-Twilio-Email-Event-Webhook-Signature": sig, "X-Twilio-Email-Event-Webhook-Timestamp": timestamp}
        ours_ok = get_verifier("sendgrid").verify(WebhookRequest(payload, headers), [SENDGRID_PUBLIC], now=now).ok
        agree(ours_ok, sdk.verify_signature(payload.decode(), sig, timestamp))
    # a signature made outside our code (cryptography directly, as SendGrid does) passes ours
    key = serialization.load_pem_private_key(SENDGRID_PRIVATE.encode(), None)
    foreign = base64.b64encode(key.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {"X-Twilio-Email-Event-Webhook-Signature": foreign, "X-Twilio-Email-Event-Webhook-Timestamp": ts}
    assert sdk.verify_signature(body.decode(), foreign, ts)
    assert get_verifier("sendgrid").verify(WebhookRequest(body, headers), [SENDGRID_PUBLIC], now=now).ok


# --- Mailgun ----------------------------------------------------------------------------------------
def test_mailgun_sdk_agrees_with_ours() -> None:
    import hashlib
    import hmac

    from mailgun.security import SecurityGuard

    key, now = "key-mailgun-oracle", time.time()
    signed = get_verifier("mailgun").sign(b'{"event-data": {"event": "opened"}}', key, now=now, event_id="a" * 50)
    sig = json.loads(signed.body)["signature"]
    assert SecurityGuard.verify_webhook(key, sig["token"], sig["timestamp"], sig["signature"], max_age_seconds=300)
    fresh, old = str(int(now)), str(int(now) - 400)
    # (timestamp, token, key that signs, key that verifies, tamper the token after signing)
    variants = [(fresh, "t" * 50, key, key, False), (old, "t" * 50, key, key, False), (fresh, "t" * 50, key, "key-wrong", False),
                (fresh, "t" * 50, key, key, True)]
    for ts, token, signing_key, verify_key, tamper in variants:
        signature = hmac.new(signing_key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
        token = "u" + token[1:] if tamper else token
        body = json.dumps({"signature": {"timestamp": ts, "token": token, "signature": signature}}).encode()
        ours_ok = get_verifier("mailgun").verify(WebhookRequest(body), [verify_key], now=now).ok
        agree(ours_ok, SecurityGuard.verify_webhook(verify_key, token, ts, signature, max_age_seconds=300))


# --- EasyPost ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", ["easypost-oracle", "s\u00e9cr\u00e8t-compos\u00e9"])
def test_easypost_sdk_agrees_with_ours(secret: str) -> None:
    import unicodedata

    from easypost.errors import SignatureVerificationError
    from easypost.util import validate_webhook

    def sdk_ok(body: bytes, headers: dict[str, str], key: str) -> bool:
        try:
            validate_webhook(body, headers, key)
        except SignatureVerificationError:
            return False
        return True

    signed = get_verifier("easypost").sign(BODY, secret)
    headers = dict(signed.headers)
    assert sdk_ok(BODY, headers, secret)
    assert get_verifier("easypost").verify(WebhookRequest(BODY, headers), [unicodedata.normalize("NFD", secret)]).ok
    for body, hdrs, key in ((BODY, headers, secret), (BODY[:-1] + b" ", headers, secret), (BODY, headers, "other"), (BODY, {}, secret)):
        agree(get_verifier("easypost").verify(WebhookRequest(body, hdrs), [key]).ok, sdk_ok(body, hdrs, key))
