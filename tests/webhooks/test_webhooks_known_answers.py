"""Published known-answer examples from vendor documentation and specifications."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from connectorctl.webhooks import WebhookRequest, get_verifier


def test_github_documented_test_vector() -> None:
    # docs.github.com "Validating webhook deliveries": secret + payload -> X-Hub-Signature-256
    secret, body = "It's a Secret to Everybody", b"Hello, World!"
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verifier = get_verifier("github")
    assert verifier.verify(WebhookRequest(body, {"X-Hub-Signature-256": header}), [secret]).ok
    assert verifier.sign(body, secret).headers["X-Hub-Signature-256"] == header
    assert not verifier.verify(WebhookRequest(b"Hello, World?", {"X-Hub-Signature-256": header}), [secret]).ok


def test_standard_webhooks_specification_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    headers = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
               "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
    verifier = get_verifier("standard")
    verdict = verifier.verify(WebhookRequest(body, headers), [secret], now=1614265330 + 10)
    assert verdict.ok and verdict.event_id == "msg_p5jXN8AQM9LWM0D4loKWxJek"
    signed = verifier.sign(body, secret, now=1614265330, event_id="msg_p5jXN8AQM9LWM0D4loKWxJek")
    assert signed.headers["webhook-signature"] == headers["webhook-signature"]
    assert verifier.verify(WebhookRequest(body, headers), [secret], now=1614265330 + 301).reason == "stale"


@pytest.mark.parametrize(("caller", "signature"), [("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
                                                   ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8=")])
def test_twilio_documented_signature_examples(caller: str, signature: str) -> None:
    # Twilio's signature-validation snippets: auth token 12345 and these POST parameters
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Caller": caller, "Digits": "1234", "From": caller, "To": "+18005551212"}
    body = urlencode(params).encode()
    verifier = get_verifier("twilio", url=url)
    assert verifier.verify(WebhookRequest(body, {"X-Twilio-Signature": signature}), ["12345"]).ok
    assert verifier.sign(body, "12345").headers["X-Twilio-Signature"] == signature
    assert not verifier.verify(WebhookRequest(body.replace(b"1234", b"1235", 1), {"X-Twilio-Signature": signature}), ["12345"]).ok
