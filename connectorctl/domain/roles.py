"""Role interfaces that application code depends on; adapters implement them.

Named for the role, not the mechanism (``EmailService``, not ``SendGridClient``),
so an ERP can swap vendors with a config change and no code change.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # annotations only: every command imports this module, most need none of these types
    from connectorctl.domain.messages import EmailMessage, SendResult, SmsMessage
    from connectorctl.domain.money import Money
    from connectorctl.domain.payments import Payment
    from connectorctl.domain.shipping import (
        Address,
        AddressVerification,
        Label,
        LabelFormat,
        Rate,
        Refund,
        Shipment,
        Tracking,
    )
    from connectorctl.domain.storage import ObjectPage, PresignedUrl, StoredObject
    from connectorctl.domain.values import Credentials, IntegrationLog
    from connectorctl.webhooks.base import Verdict, WebhookRequest


@runtime_checkable
class EmailService(Protocol):
    def send(self, message: EmailMessage) -> SendResult: ...

    def send_bulk(self, messages: Sequence[EmailMessage]) -> list[SendResult]: ...

    def validate_address(self, email: str) -> bool: ...

    def statistics(self, start: datetime, end: datetime) -> Mapping[str, Any]: ...


@runtime_checkable
class SmsService(Protocol):
    def send(self, message: SmsMessage) -> SendResult: ...

    def send_bulk(self, messages: Sequence[SmsMessage]) -> list[SendResult]: ...

    def validate_phone_number(self, phone_number: str) -> Mapping[str, Any]: ...

    def check_balance(self) -> Mapping[str, Any]: ...


@runtime_checkable
class PaymentGateway(Protocol):
    """Money operations keyed by the caller's business reference (see docs/payments.md)."""

    def charge(
        self,
        amount: Money,
        *,
        reference: str,
        capture: bool = True,
        payment_method: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Payment: ...

    def capture(
        self, payment_id: str, amount: Money | int | None = None, *, reference: str | None = None
    ) -> Payment: ...

    def cancel(self, payment_id: str, *, reference: str | None = None) -> Payment: ...

    def refund(
        self,
        payment_id: str,
        amount: Money | int | None = None,
        *,
        reason: str | None = None,
        reference: str | None = None,
    ) -> Payment: ...

    def retrieve(self, payment_id: str) -> Payment: ...

    def reconcile(self, *, since: str | None = None) -> Sequence[Any]: ...


@runtime_checkable
class CloudStorage(Protocol):
    """An object store; ``upload``/``download``/``temporary_url`` are the reference design's names."""

    def put(
        self, key: str, data: Any, *, content_type: str | None = None, metadata: Mapping[str, str] | None = None
    ) -> StoredObject: ...

    def get(self, key: str) -> bytes: ...

    def download_to(self, key: str, target: Any) -> StoredObject: ...

    def head(self, key: str) -> StoredObject: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def list(self, prefix: str = "", *, limit: int = 1000, after: str | None = None) -> ObjectPage: ...

    def copy(self, source: str, target: str) -> StoredObject: ...

    def presign(self, key: str, *, expires_in: Any = 3600, method: str = "GET") -> PresignedUrl: ...

    def upload(self, path: str, content: bytes, *, content_type: str | None = None) -> str: ...

    def download(self, path: str) -> bytes: ...

    def temporary_url(self, path: str, expires_in_seconds: int) -> str: ...


@runtime_checkable
class ShippingProvider(Protocol):
    def get_rates(self, shipment: Shipment) -> list[Rate]: ...

    def buy_label(self, rate_id: str, label_format: LabelFormat = ...) -> Label: ...

    def track(self, tracking_number: str, carrier: str | None = None) -> Tracking: ...

    def cancel(self, shipment_id: str) -> Refund: ...

    def verify_address(self, address: Address) -> AddressVerification: ...


@runtime_checkable
class CredentialProvider(Protocol):
    def get(self, service_name: str, tenant_id: str | None = None) -> Credentials: ...

    def has(self, service_name: str, tenant_id: str | None = None) -> bool: ...

    def refresh(self, service_name: str, tenant_id: str | None = None) -> Credentials: ...


@runtime_checkable
class IntegrationLogger(Protocol):
    """The audit log (``Connector.integration_log``)."""

    def log(self, entry: IntegrationLog) -> None: ...

    def get_logs(
        self, filters: Mapping[str, Any] | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]: ...

    def get_metrics(self, service_name: str, start: datetime, end: datetime) -> Mapping[str, Any]: ...

    def purge_old_logs(self, retention_days: int) -> int: ...


@runtime_checkable
class WebhookVerifier(Protocol):
    """The reference design's verifier role (``verify(payload, signature, secret)``), generalised:
    several headers, several active secrets, and a verdict that says why instead of a bare bool.
    Every scheme in :mod:`connectorctl.webhooks` implements it (``connectorctl.webhooks.get_verifier``)."""

    scheme: str

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: float | None = None) -> Verdict: ...
