"""Adapter base classes: they orchestrate; vendor modules only translate.

An adapter turns one domain message into one vendor request and the vendor's
answer back into a :class:`SendResult`.  Resilience and logging happen in the
pipeline, never here.  A message feature the vendor cannot carry is reported
through :meth:`Adapter.unsupported`, so nothing is dropped silently.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from connectorctl.domain.messages import EmailMessage, SendResult, SmsMessage
from connectorctl.errors import ConnectorctlError, ConnectorError, UnsupportedFeatureError
from connectorctl.resilience.pipeline import Call, VendorResponse

if TYPE_CHECKING:
    from connectorctl.gateway import Connector

BULK_CONCURRENCY = 8


class Adapter:
    channel = ""
    capabilities: frozenset[str] = frozenset()

    def __init__(self, slug: str, connector: "Connector") -> None:
        self.slug = slug
        self.connector = connector
        self.config = connector.settings.vendor(slug)

    def unsupported(self, message: EmailMessage | SmsMessage) -> frozenset[str]:
        return message.features() - self.capabilities

    def require(self, message: EmailMessage | SmsMessage) -> None:
        missing = self.unsupported(message)
        if missing:
            raise UnsupportedFeatureError(f"{self.slug} cannot send a message with {', '.join(sorted(missing))}", service=self.slug)

    def run(self, call: Call, fn: Callable[[], VendorResponse]) -> VendorResponse:
        return self.connector.pipeline.execute(call, fn)

    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        """One harmless authenticated read, so ``creds test`` proves a key works without sending anything."""
        raise UnsupportedFeatureError(f"{self.slug} has no credential check", service=self.slug)

    def _bulk(self, send: Callable[[Any], SendResult], items: Sequence[Any], concurrency: int) -> list[SendResult | ConnectorctlError]:
        return send_each(send, items, concurrency)


    def preview(self, message: EmailMessage | SmsMessage, *, tenant_id: str | None = None) -> dict[str, Any]:
        """What a send would do, without doing it (``send --dry-run``).

        HTTP adapters override this to build (never send) their request and
        show it redacted; local adapters just describe their action.
        """
        http_preview = getattr(self, "http_preview", None)  # HttpAdapterMixin, whatever the MRO order
        if http_preview is not None:
            return http_preview(message, tenant_id=tenant_id)
        return {"vendor": self.slug, "kind": "local", "action": self.describe_action(message)}

    def describe_action(self, message: EmailMessage | SmsMessage) -> str:
        return f"hand the message to the {self.slug} adapter"


class EmailAdapter(Adapter):
    channel = "email"

    def send(self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        raise NotImplementedError

    def send_bulk(self, messages: Sequence[EmailMessage], *, tenant_id: str | None = None, concurrency: int = BULK_CONCURRENCY) -> list[SendResult | ConnectorError]:
        return self._bulk(lambda m: self.send(m, tenant_id=tenant_id), messages, concurrency)

    def validate_address(self, address: str) -> bool:
        from connectorctl.validation import is_valid_email

        return is_valid_email(address)

    def statistics(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        """Computed from our own integration log unless a vendor module overrides it."""
        return {**self.connector.log_metrics(self.slug, start, end), "source": "integration_log"}

    def sender(self, message: EmailMessage) -> tuple[str, str | None]:
        """The message's sender, else ``vendors.<slug>.from_*``, else ``$MAIL_FROM_ADDRESS``/``$MAIL_FROM_NAME``."""
        from connectorctl.credentials.vendor_env import sender_default

        address = message.from_email or self.config.from_email or (sender_default("email", "from_email") or ("connectorctl@localhost",))[0]
        return address, message.from_name or self.config.from_name or (sender_default("email", "from_name") or (None,))[0]


class SmsAdapter(Adapter):
    channel = "sms"

    def send(self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        raise NotImplementedError

    def send_bulk(self, messages: Sequence[SmsMessage], *, tenant_id: str | None = None, concurrency: int = BULK_CONCURRENCY) -> list[SendResult | ConnectorError]:
        return self._bulk(lambda m: self.send(m, tenant_id=tenant_id), messages, concurrency)

    def validate_phone_number(self, phone_number: str) -> Mapping[str, Any]:
        from connectorctl.validation import describe_phone

        return describe_phone(phone_number)

    def check_balance(self) -> Mapping[str, Any]:
        raise UnsupportedFeatureError(f"{self.slug} has no balance to check", service=self.slug)


def send_each(send: Callable[[Any], SendResult], items: Sequence[Any], concurrency: int) -> list[SendResult | ConnectorctlError]:
    """Send every item with bounded concurrency; one failure never stops the others (its error takes its slot)."""

    def one(item: Any) -> SendResult | ConnectorctlError:
        try:
            return send(item)
        except ConnectorctlError as exc:
            return exc

    if concurrency <= 1 or len(items) <= 1:
        return [one(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(one, items))
