"""PayPal events, signed by `connectorctl webhook sign --scheme paypal` with a test key, posted to a real
`connectorctl serve`, move a PayPal payment forward (and never backwards).  The server is a real process;
signing and reading the payment back are CLI commands run in this process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from connectorctl import Connector
from connectorctl.domain.money import Money
from connectorctl.domain.payments import Payment, PaymentStatus
from tests.api.test_api_process import Served, start, stop
from tests.fake_paypal import FakePayPal
from tests.payment_support import payment_config, payment_env
from tests.webhooks.paypal_certs import CertServer, certificate, write_key

pytestmark = pytest.mark.slow
WEBHOOK_ENV = {"PAYPAL_WEBHOOK_ID": "8PT597110X687430LKGECATA"}


class PayPalSite:
    def __init__(self, served: Served, tmp_path: Path, certs: CertServer, cert_url: str, key_file: Path, cli: Callable[..., Any]) -> None:
        self.served, self.tmp_path, self.certs, self.cert_url, self.key_file = served, tmp_path, certs, cert_url, key_file
        self.cli = cli
        self.url = f"{served.url}/api/connector/webhooks/paypal"

    def sign(self, event: dict[str, Any], *extra: str, key_file: Path | None = None, cert_url: str | None = None) -> tuple[bytes, dict[str, str]]:
        body_file = self.tmp_path / f"{event['id']}.json"
        body_file.write_bytes(json.dumps(event).encode())
        result = self.cli("webhook", "sign", "--scheme", "paypal", "--secret-env", "PAYPAL_WEBHOOK_ID", "--body-file", str(body_file),
                          "--signing-key", str(key_file or self.key_file), "--cert-url", cert_url or self.cert_url, "--json", *extra)
        assert result.exit_code == 0, result.stderr
        return body_file.read_bytes(), json.loads(result.stdout)["headers"]

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.url, content=body, headers=headers, timeout=10)

    def deliver(self, event: dict[str, Any]) -> httpx.Response:
        return self.post(*self.sign(event))


@pytest.fixture
def site(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Any]) -> Iterator[tuple[PayPalSite, Payment]]:
    certs = CertServer()
    key_file = tmp_path / "paypal-signing.pem"
    cert_url = certs.add("CERT-360caa42", certificate(write_key(key_file)))
    for name, value in {**payment_env(), **WEBHOOK_ENV}.items():
        monkeypatch.setenv(name, value)
    with FakePayPal() as paypal:
        payment_config(home, paypal_url=paypal.url, chain="paypal", extra=(
            "webhooks:\n  paypal:\n    scheme: paypal\n    secret_env: [PAYPAL_WEBHOOK_ID]\n"
            f"    cert_origins: ['{certs.origin}']\n"))
        with Connector() as connector:
            payment = connector.payments().charge(Money(3000, "USD"), reference="order:7:charge", capture=False, payment_method="vault_ok_1")
        assert payment.status is PaymentStatus.AUTHORIZED
        served = start(home, "--workers", "1", env={**WEBHOOK_ENV, **payment_env()})  # one process: one certificate cache
        try:
            yield PayPalSite(served, tmp_path, certs, cert_url, key_file, cli), payment
        finally:
            stop(served)
            certs.close()


def shown(paypal: PayPalSite, payment: Payment) -> dict[str, Any]:
    result = paypal.cli("payments", "show", payment.payment_id, "-o", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    return data.get("data", data)


def capture_event(n: int, payment: Payment) -> dict[str, Any]:
    return {"id": f"WH-{n}", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource_type": "capture", "resource": {
        "id": "3C-EVENT", "status": "COMPLETED", "amount": {"currency_code": "USD", "value": "30.00"},
        "supplementary_data": {"related_ids": {"order_id": payment.payment_id, "authorization_id": payment.authorization_id}}}}


def test_paypal_events_through_serve_update_the_payment(site: tuple[PayPalSite, Payment]) -> None:
    paypal, payment = site
    captured = paypal.deliver(capture_event(1, payment))
    assert captured.status_code == 200 and captured.json()["event_id"] == "WH-1", captured.text
    assert shown(paypal, payment)["status"] == "captured"
    refund = {"id": "WH-2", "event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": {
        "id": "1R-EVENT", "amount": {"currency_code": "USD", "value": "10.00"},
        "seller_payable_breakdown": {"total_refunded_amount": {"currency_code": "USD", "value": "10.00"}},
        "links": [{"rel": "up", "href": "https://api-m.paypal.com/v2/payments/captures/3C-EVENT"}]}}
    assert paypal.deliver(refund).status_code == 200
    after = shown(paypal, payment)
    assert (after["status"], after["amount_captured"], after["amount_refunded"], after["capture_id"]) == ("partially_refunded", 3000, 1000, "3C-EVENT")
    # Out of order: the authorization event and the capture event arriving late change nothing.
    late_auth = {"id": "WH-0", "event_type": "PAYMENT.AUTHORIZATION.CREATED", "resource": {
        "id": payment.authorization_id, "status": "CREATED", "supplementary_data": {"related_ids": {"order_id": payment.payment_id}}}}
    assert paypal.deliver(late_auth).status_code == 200
    assert paypal.deliver(capture_event(3, payment)).status_code == 200
    assert shown(paypal, payment)["status"] == "partially_refunded"
    # PayPal resending the capture event (new transmission id and time) is acknowledged, not applied twice.
    again = paypal.deliver(capture_event(1, payment))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert shown(paypal, payment)["status"] == "partially_refunded"
    assert paypal.certs.fetches == {"CERT-360caa42": 1}  # the server fetched the certificate once for all five deliveries


def test_forged_stale_replayed_and_foreign_cert_deliveries_are_refused(site: tuple[PayPalSite, Payment], tmp_path: Path) -> None:
    paypal, payment = site
    body, headers = paypal.sign(capture_event(1, payment), "--event-id", "tx-replayed")
    tampered = body.replace(b'"30.00"', b'"3.00"')
    refused = paypal.post(tampered, headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "bad_signature"
    stale = paypal.post(*paypal.sign(capture_event(4, payment), "--timestamp", str(int(time.time()) - 3600)))
    assert stale.status_code == 401 and stale.json()["error"]["code"] == "stale"
    foreign = paypal.post(*paypal.sign(capture_event(5, payment), cert_url="https://certs.example.net/v1/notifications/certs/CERT-1"))
    assert foreign.status_code == 401 and foreign.json()["error"]["code"] == "untrusted_cert"
    unsigned = paypal.post(body, {"Content-Type": "application/json"})
    assert unsigned.status_code == 400 and unsigned.json()["error"]["code"] == "missing_header"
    assert shown(paypal, payment)["status"] == "authorized"  # nothing refused touched the payment
    accepted = paypal.post(body, headers)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
    replayed = paypal.post(body, headers)  # the same transmission again: acknowledged, never applied twice
    assert replayed.status_code == 200 and replayed.json()["status"] == "duplicate"
    assert shown(paypal, payment)["status"] == "captured"
    # `webhook verify` finds the delivery genuine, and with --check-replay knows the server already accepted it.
    body_file = tmp_path / "replayed.json"
    body_file.write_bytes(body)
    args = ["webhook", "verify", "--service", "paypal", "--body-file", str(body_file), "--json"]
    args += [a for name, value in headers.items() for a in ("-H", f"{name}: {value}")]
    genuine = paypal.cli(*args)
    assert genuine.exit_code == 0 and json.loads(genuine.stdout)["event_id"] == "WH-1", genuine.stderr
    replay = paypal.cli(*args, "--check-replay")
    assert replay.exit_code == 1 and "replay" in replay.stderr
