"""Property: no single-byte mutation of a signed body or signature header verifies.

Where a vendor's scheme does not sign every byte (Twilio/Mandrill sign the
*decoded* form fields, Mailgun only timestamp+token, Postmark nothing in the
body), the property is that no mutation changing what is signed verifies.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectorctl.webhooks import WebhookRequest
from tests.webhooks.webhook_cases import CASES, NOW, Case, signed_fields

SIGNED = {c.name: c.signed() for c in CASES}
# Headers the vendor itself does not sign (GitHub's delivery id and event name), so mutating them proves nothing.
UNSIGNED_HEADERS = {"content-type", "x-github-delivery", "x-github-event"}
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def mutate(data: bytes, draw: st.DataObject) -> bytes:
    kind = draw.draw(st.sampled_from(["replace", "insert", "delete"]))
    index = draw.draw(st.integers(0, len(data) - 1 if kind != "insert" else len(data)))
    if kind == "delete":
        return data[:index] + data[index + 1:]
    byte = draw.draw(st.integers(0, 255))
    if kind == "insert":
        return data[:index] + bytes([byte]) + data[index:]
    if byte == data[index]:
        byte = (byte + 1) % 256
    return data[:index] + bytes([byte]) + data[index + 1:]


def _verifies(case: Case, body: bytes, headers: dict[str, str]) -> bool:
    signed = SIGNED[case.name]
    return case.verifier().verify(WebhookRequest(body, headers, signed.url), [case.verify_secret], now=NOW).ok


@PROPERTY
@given(case=st.sampled_from([c for c in CASES if c.scheme != "postmark"]), data=st.data())
def test_no_body_mutation_verifies(case: Case, data: st.DataObject) -> None:
    signed = SIGNED[case.name]
    body = mutate(signed.body, data)
    if signed_fields(case, body) == signed_fields(case, signed.body):
        return  # the mutation did not touch anything this scheme signs (documented limit)
    assert not _verifies(case, body, dict(signed.headers))


@PROPERTY
@given(case=st.sampled_from([c for c in CASES if c.signature_header]), data=st.data())
def test_no_header_mutation_verifies(case: Case, data: st.DataObject) -> None:
    signed = SIGNED[case.name]
    headers = dict(signed.headers)
    name = data.draw(st.sampled_from(sorted(n for n in headers if n.lower() not in UNSIGNED_HEADERS)))
    mutated = mutate(headers[name].encode("latin-1"), data).decode("latin-1")
    if mutated.strip() == headers[name].strip():
        return  # only surrounding whitespace changed: HTTP itself strips it
    headers[name] = mutated
    assert not _verifies(case, signed.body, headers)


def test_the_unmutated_examples_verify() -> None:
    for case in CASES:
        assert _verifies(case, SIGNED[case.name].body, dict(SIGNED[case.name].headers)), case.name
