"""Roles that match: every exported role Protocol has a shipped implementation that passes ``isinstance``
and does its job in one real call (a library user coding against the Protocol gets no TypeError)."""

from __future__ import annotations

import base64
import inspect
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator, Protocol

import pytest

import connectorctl
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain import roles
from connectorctl.domain.messages import EmailMessage, SmsMessage
from connectorctl.domain.values import IntegrationLog, IntegrationStatus
from connectorctl.gateway import Connector
from connectorctl.webhooks import SCHEMES, WebhookRequest, get_verifier

NOW = datetime.now(timezone.utc)


@pytest.fixture
def connector(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connector]:
    monkeypatch.setenv("CONNECTORCTL_MASTER_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    c = Connector()
    yield c
    c.close()


def check_email_service(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = connector.email()
    assert isinstance(service, roles.EmailService)
    assert service.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x")).ok
    assert len(list((home / "outbox").glob("*.eml"))) == 1


def check_sms_service(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = connector.sms()
    assert isinstance(service, roles.SmsService)
    assert service.send(SmsMessage(to="+14155552671", body="x")).ok
    assert service.validate_phone_number("+14155552671")["valid"] is True


def check_credential_provider(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for provider in (connector.credentials, StaticCredentialProvider({"sendgrid": {"api_key": "SG.static"}})):
        assert isinstance(provider, roles.CredentialProvider)
    connector.credentials.store.put("sendgrid", None, "api_key", {"api_key": "SG.stored-key"}, None, NOW.timestamp())
    assert connector.credentials.has("sendgrid") and connector.credentials.get("sendgrid").data["api_key"] == "SG.stored-key"


def check_integration_logger(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = connector.integration_log
    assert isinstance(log, roles.IntegrationLogger)
    old = (NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    log.log(IntegrationLog("01OLDENTRY0000000000000000", "inbound-erp", "/orders", "POST", IntegrationStatus.SUCCESS, 12, 1, old,
                           operation="order_created", direction="inbound"))
    # sent after the old row: purge always keeps the newest row (the log's sequence anchor)
    connector.email().send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
    assert [r["service_name"] for r in log.get_logs({"service_name": "file"})] == ["file"]
    assert [r["operation"] for r in log.get_logs({"direction": "inbound", "since": "60d"})] == ["order_created"]
    assert log.get_metrics("file", NOW - timedelta(hours=1), NOW + timedelta(hours=1))["success_count"] == 1
    assert log.purge_old_logs(30) == 1 and len(log.get_logs()) == 1


def check_webhook_verifier(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for scheme in SCHEMES:
        assert isinstance(get_verifier(scheme, url="https://shop.example.com/hooks"), roles.WebhookVerifier), scheme
    verifier = get_verifier("stripe")
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    signed = verifier.sign(body, "whsec_test", now=NOW.timestamp())
    verdict = verifier.verify(WebhookRequest(body, signed.headers), ["whsec_test"], now=NOW.timestamp())
    assert verdict.ok and verdict.event_id == "evt_1"
    forged = verifier.verify(WebhookRequest(body, signed.headers), ["another-secret"], now=NOW.timestamp())
    assert not forged.ok


def check_payment_gateway(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fake_stripe import FakeStripe
    from tests.payment_support import payment_connector

    from connectorctl.domain.money import Money

    monkeypatch.setenv("CONNECTORCTL_HOME", str(home / "payments"))  # an installation configured for payments
    with FakeStripe() as stripe, payment_connector(home / "payments", monkeypatch, stripe_url=stripe.url) as payments:
        service = payments.payments()
        assert isinstance(service, roles.PaymentGateway)
        payment = service.charge(Money.parse("19.99 EUR"), reference="order:1", payment_method="pm_card_visa")
        assert payment.amount_captured == 1999 and service.retrieve(payment.payment_id).payment_id == payment.payment_id


def check_cloud_storage(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    storage = connector.storage()  # the embedded default: a folder under CONNECTORCTL_HOME
    assert isinstance(storage, roles.CloudStorage)
    stored = storage.put("invoices/42.txt", b"invoice 42", content_type="text/plain")
    assert stored.size == 10 and storage.get("invoices/42.txt") == b"invoice 42"


def check_shipping_provider(connector: Connector, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_easypost import API_KEY, FakeEasyPost
    from shipping_contract import SHIPMENT, settings_for

    from connectorctl.credentials.static import StaticCredentialProvider as Static

    with FakeEasyPost() as fake, Connector(settings_for(home / "shipping", "easypost", fake),
                                           credentials=Static({"easypost": {"api_key": API_KEY}})) as shipper:
        service = shipper.shipping()
        assert isinstance(service, roles.ShippingProvider)
        rates = service.get_rates(SHIPMENT)
        assert rates and all(rate.price.amount > 0 for rate in rates)


ROLE_CHECKS = {
    "CloudStorage": check_cloud_storage,
    "ShippingProvider": check_shipping_provider,
    "EmailService": check_email_service,
    "SmsService": check_sms_service,
    "CredentialProvider": check_credential_provider,
    "IntegrationLogger": check_integration_logger,
    "PaymentGateway": check_payment_gateway,
    "WebhookVerifier": check_webhook_verifier,
}


def exported_roles() -> set[str]:
    return {name for name, obj in vars(roles).items()
            if inspect.isclass(obj) and obj.__module__ == roles.__name__ and Protocol in obj.__mro__}


def test_every_exported_role_is_checked_here() -> None:
    assert exported_roles() == set(ROLE_CHECKS)
    for name in ROLE_CHECKS:
        assert getattr(connectorctl, name) is getattr(roles, name), f"connectorctl.{name} is not the role Protocol"


@pytest.mark.parametrize("role", sorted(ROLE_CHECKS))
def test_a_shipped_implementation_matches_the_role_and_does_its_job(role: str, connector: Connector, home: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ROLE_CHECKS[role](connector, home, monkeypatch)
