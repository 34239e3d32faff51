"""Every scheme: genuine deliveries pass; each kind of tampering fails with the right reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectorctl.webhooks import Reason, WebhookRequest, get_verifier
from connectorctl.webhooks.replay import ReplayStore
from connectorctl.webhooks.service import verify_delivery
from tests.webhooks.webhook_cases import CASES, CASE_IDS, NOW, Case, flip_byte


def verify(case: Case, request: WebhookRequest, secrets: list[str] | None = None, now: float = NOW):
    return case.verifier().verify(request, [case.verify_secret] if secrets is None else secrets, now=now)


def test_genuine_delivery_passes_with_event_id(case: Case) -> None:
    verdict = verify(case, case.signed().request())
    assert verdict.ok, verdict
    assert verdict.reason == "ok" and verdict.scheme == case.scheme
    assert verdict.event_id


def test_any_active_secret_passes_so_secrets_rotate_without_downtime(case: Case) -> None:
    request = case.signed().request()
    assert verify(case, request, [case.wrong_secret, case.verify_secret]).ok
    assert verify(case, request, [case.verify_secret, case.wrong_secret]).ok


def test_wrong_secret_is_a_bad_signature(case: Case) -> None:
    verdict = verify(case, case.signed().request(), [case.wrong_secret])
    assert (verdict.ok, verdict.reason) == (False, Reason.BAD_SIGNATURE)


def test_verdict_never_echoes_the_secret(case: Case) -> None:
    for secrets in ([case.wrong_secret], [case.verify_secret]):
        text = json.dumps(verify(case, case.signed().request(), secrets).to_dict())
        assert case.sign_secret not in text and case.verify_secret not in text and case.wrong_secret not in text


@pytest.mark.parametrize("case", [c for c in CASES if c.scheme not in ("postmark", "mailgun")], ids=lambda c: c.name)
def test_body_changed_by_one_byte_fails(case: Case) -> None:
    signed = case.signed()
    for index in (0, len(signed.body) // 2, len(signed.body) - 1):
        tampered = WebhookRequest(flip_byte(signed.body, index), signed.headers, signed.url)
        assert verify(case, tampered).reason == Reason.BAD_SIGNATURE, index


def test_mailgun_signature_fields_changed_by_one_byte_fail() -> None:
    case = next(c for c in CASES if c.scheme == "mailgun")
    signed = case.signed()
    for key in ("token", "timestamp", "signature"):
        changed = json.loads(signed.body)
        value = changed["signature"][key]
        changed["signature"][key] = value[:-1] + ("1" if value[-1] != "1" else "2")
        verdict = verify(case, WebhookRequest(json.dumps(changed).encode(), signed.headers))
        assert (verdict.ok, verdict.reason) == (False, Reason.BAD_SIGNATURE), key


@pytest.mark.parametrize("case", [c for c in CASES if c.json_body], ids=lambda c: c.name)
def test_reserialised_json_fails(case: Case) -> None:
    signed = case.signed()
    if case.scheme == "mandrill":
        from urllib.parse import parse_qsl, urlencode

        events = dict(parse_qsl(signed.body.decode()))["mandrill_events"]
        body = urlencode({"mandrill_events": json.dumps(json.loads(events), indent=1)}).encode()
    else:
        body = json.dumps(json.loads(signed.body), indent=2, sort_keys=True).encode()
    assert body != signed.body
    assert verify(case, WebhookRequest(body, signed.headers, signed.url)).reason == Reason.BAD_SIGNATURE


def test_documented_limits_postmark_and_mailgun_do_not_cover_the_body() -> None:
    """Postmark (basic auth) and Mailgun (timestamp+token) sign no body bytes: a changed event still passes."""
    for name in ("postmark", "mailgun"):
        case = next(c for c in CASES if c.name == name)
        signed = case.signed()
        changed = signed.body.replace(b"elivere", b"eliverX") if b"elivere" in signed.body else signed.body.replace(b"Delivery", b"DeliverX")
        assert changed != signed.body
        assert verify(case, WebhookRequest(changed, signed.headers, signed.url)).ok


@pytest.mark.parametrize("case", [c for c in CASES if c.signature_header], ids=lambda c: c.name)
def test_missing_signature_header(case: Case) -> None:
    signed = case.signed()
    headers = {k: v for k, v in signed.headers.items() if k.lower() != case.signature_header.lower()}
    assert verify(case, WebhookRequest(signed.body, headers, signed.url)).reason == Reason.MISSING_HEADER


def test_mailgun_body_without_signature_is_missing_and_garbage_is_malformed() -> None:
    case = next(c for c in CASES if c.scheme == "mailgun")
    assert verify(case, WebhookRequest(case.body)).reason == Reason.MISSING_HEADER
    bad = json.dumps({"signature": "abc", "event-data": {}}).encode()
    assert verify(case, WebhookRequest(bad)).reason == Reason.MALFORMED_HEADER
    assert verify(case, WebhookRequest(b"{not json")).reason == Reason.MALFORMED_BODY


@pytest.mark.parametrize("case", [c for c in CASES if c.malformed], ids=lambda c: c.name)
def test_malformed_header(case: Case) -> None:
    signed = case.signed()
    name, value, reason = case.malformed
    headers = {k: v for k, v in signed.headers.items() if k.lower() != name.lower()}
    headers[name] = value
    assert verify(case, WebhookRequest(signed.body, headers, signed.url)).reason == reason


@pytest.mark.parametrize("case", [c for c in CASES if c.timestamped], ids=lambda c: c.name)
def test_stale_timestamp_is_refused_and_the_tolerance_is_configurable(case: Case) -> None:
    old = case.signed(now=NOW - 301).request()
    assert verify(case, old).reason == Reason.STALE
    assert verify(case, case.signed(now=NOW - 299).request()).ok
    assert case.verifier(tolerance_seconds=600).verify(old, [case.verify_secret], now=NOW).ok
    assert case.verifier(tolerance_seconds=0).verify(case.signed(now=NOW - 86400).request(), [case.verify_secret], now=NOW).ok


@pytest.mark.parametrize("case", [c for c in CASES if c.timestamped], ids=lambda c: c.name)
def test_future_timestamp(case: Case) -> None:
    verdict = verify(case, case.signed(now=NOW + 301).request())
    if case.scheme == "stripe":  # like Stripe's SDK, only old timestamps are refused
        assert verdict.ok
    else:
        assert verdict.reason == Reason.STALE


def test_stale_signature_with_wrong_secret_says_bad_signature(case: Case) -> None:
    verdict = verify(case, case.signed(now=NOW - 10_000).request(), [case.wrong_secret])
    assert verdict.reason == Reason.BAD_SIGNATURE


def test_replayed_delivery_is_refused_until_its_window_expires(case: Case, tmp_path: Path) -> None:
    from connectorctl.store.db import StateDB

    store = ReplayStore(StateDB(tmp_path / "state.db"))
    verifier = case.verifier()
    request = case.signed().request()
    first = verify_delivery(verifier, request, [case.verify_secret], service=case.name, store=store, now=NOW)
    again = verify_delivery(verifier, request, [case.verify_secret], service=case.name, store=store, now=NOW + 1)
    assert first.ok
    assert (again.ok, again.reason, again.event_id) == (False, Reason.REPLAY, first.event_id)
    other_service = verify_delivery(verifier, request, [case.verify_secret], service="elsewhere", store=store, now=NOW + 1)
    assert other_service.ok
    if not case.timestamped:  # no timestamp: the id is remembered for the replay window, then forgotten
        later = verify_delivery(verifier, request, [case.verify_secret], service=case.name, store=store, now=NOW + 86401)
        assert later.ok


def test_rejected_delivery_is_not_recorded_as_seen(tmp_path: Path) -> None:
    from connectorctl.store.db import StateDB

    case = CASES[0]
    store = ReplayStore(StateDB(tmp_path / "state.db"))
    request = case.signed().request()
    bad = verify_delivery(case.verifier(), request, [case.wrong_secret], service="s", store=store, now=NOW)
    good = verify_delivery(case.verifier(), request, [case.verify_secret], service="s", store=store, now=NOW)
    assert (bad.reason, good.ok) == (Reason.BAD_SIGNATURE, True)


def test_twilio_url_with_or_without_default_port_and_sharedkey_sha256() -> None:
    import base64
    import hashlib
    import hmac

    body = b"MessageSid=SM1&MessageStatus=sent"
    url = "https://erp.example.com/hook"
    sig = get_verifier("twilio", url=url).sign(body, "tok").headers["X-Twilio-Signature"]
    for received_url in ("https://erp.example.com:443/hook", url):
        assert get_verifier("twilio", url=received_url).verify(WebhookRequest(body, {"X-Twilio-Signature": sig}), ["tok"]).ok
    assert not get_verifier("twilio", url="https://erp.example.com/hook/").verify(WebhookRequest(body, {"X-Twilio-Signature": sig}), ["tok"]).ok
    sha256 = base64.b64encode(hmac.new(b"shared", (url + "MessageSidSM1MessageStatussent").encode(), hashlib.sha256).digest()).decode()
    headers = {"X-Twilio-Signature": sha256, "X-Twilio-Webhooks-Signature-Settings": "key=webhooks_sharedkey_1,algorithm=HMAC_SHA256"}
    assert get_verifier("twilio", url=url).verify(WebhookRequest(body, headers), ["shared"]).ok
    assert not get_verifier("twilio", url=url).verify(WebhookRequest(body, {"X-Twilio-Signature": sha256}), ["shared"]).ok


def test_twilio_json_body_must_match_body_sha256() -> None:
    case = next(c for c in CASES if c.name == "twilio-json")
    signed = case.signed()
    assert "bodySHA256=" in signed.url
    verdict = verify(case, WebhookRequest(signed.body + b" ", signed.headers, signed.url))
    assert verdict.reason == Reason.BAD_SIGNATURE and "bodySHA256" in verdict.detail


def test_github_refuses_a_sha1_only_delivery_unless_allow_sha1_is_set() -> None:
    import hashlib
    import hmac

    body = b'{"zen":"x"}'
    sha1 = "sha1=" + hmac.new(b"s", body, hashlib.sha1).hexdigest()
    refused = get_verifier("github").verify(WebhookRequest(body, {"X-Hub-Signature": sha1}), ["s"])
    assert not refused.ok and refused.reason == Reason.MISSING_HEADER and "allow_sha1" in refused.detail
    legacy = get_verifier("github", allow_sha1=True)
    assert legacy.verify(WebhookRequest(body, {"X-Hub-Signature": sha1}), ["s"]).ok
    both = {"X-Hub-Signature": sha1, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert not legacy.verify(WebhookRequest(body, both), ["s"]).ok  # SHA-256 present: it alone decides


def test_allow_sha1_comes_from_the_webhook_config_and_only_for_github(home) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import hmac

    from connectorctl.config import load_settings
    from connectorctl.errors import ConfigurationError
    from connectorctl.webhooks.service import verifier_for
    from tests.conftest import write_config

    body = b'{"zen":"x"}'
    sha1 = {"X-Hub-Signature": "sha1=" + hmac.new(b"s", body, hashlib.sha1).hexdigest()}
    write_config(home, "webhooks:\n  gh:\n    scheme: github\n    secret_env: [GH_SECRET]\n    allow_sha1: true\n")
    assert verifier_for(load_settings().webhooks["gh"]).verify(WebhookRequest(body, sha1), ["s"]).ok
    write_config(home, "webhooks:\n  st:\n    scheme: stripe\n    secret_env: [ST_SECRET]\n    allow_sha1: true\n")
    with pytest.raises(ConfigurationError, match="allow_sha1"):
        load_settings()


def test_standard_webhooks_skips_v1a_entries_and_accepts_any_v1() -> None:
    case = next(c for c in CASES if c.scheme == "standard")
    signed = case.signed()
    headers = dict(signed.headers)
    headers["webhook-signature"] = "v1a,AAAA v1,bm90LWl0 " + headers["webhook-signature"]
    assert verify(case, WebhookRequest(signed.body, headers)).ok


def test_misconfigured_secrets_and_options_are_configuration_errors() -> None:
    from connectorctl.errors import ConfigurationError

    case = next(c for c in CASES if c.scheme == "standard")
    with pytest.raises(ConfigurationError) as err:
        verify(case, case.signed().request(), ["whsec_!!!not-base64!!!"])
    assert "!!!" not in str(err.value)
    with pytest.raises(ConfigurationError):
        get_verifier("generic", signed_content="{timestamp}.{body}")
    with pytest.raises(ConfigurationError):
        get_verifier("generic", algorithm="md5")
    with pytest.raises(ConfigurationError):
        get_verifier("nope")
    with pytest.raises(ConfigurationError):
        verify(next(c for c in CASES if c.scheme == "sendgrid"), CASES[3].signed().request(), ["c2VjcmV0"])
    with pytest.raises(ConfigurationError, match="--url"):
        get_verifier("twilio").verify(WebhookRequest(b"a=1", {"X-Twilio-Signature": "x"}), ["t"])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_no_secret_means_no_pass(case: Case) -> None:
    assert verify(case, case.signed().request(), []).ok is False
