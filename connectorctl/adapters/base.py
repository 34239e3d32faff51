"""Adapter bases: they orchestrate; vendor modules only translate.

:class:`Adapter` is what every channel shares: the vendor's typed options,
credentials (with one OAuth2 renewal after a 401), the pipeline, capabilities,
dry-run and bulk.  A channel base (:class:`EmailAdapter`, :class:`SmsAdapter`;
payments, storage and shipping add theirs) names the channel's operations.
Resilience and logging happen in the pipeline, never here.  A message feature
the vendor cannot carry is reported through :meth:`Adapter.unsupported`, so
nothing is dropped silently.
"""

from __future__ import annotations

from abc import ABC
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar, Generic, Mapping, Protocol, Sequence, TypeVar

from connectorctl.adapters.context import AdapterContext
from connectorctl.adapters.declaration import Vendor
from connectorctl.credentials.provider import call_with_credentials
from connectorctl.domain.messages import EmailMessage, SendResult, SmsMessage
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import ConnectorctlError, CredentialNotFoundError, UnsupportedFeatureError
from connectorctl.resilience.pipeline import Call, VendorResponse
from connectorctl.settings import VendorSettings

BULK_CONCURRENCY = 8
MESSAGE_KEY = "connectorctl_key"  # the vendor metadata / custom-args field that carries our message key
ALL_EMAIL_FEATURES = frozenset({"cc", "bcc", "reply_to", "headers", "tags", "metadata", "attachments", "html"})
TEMPLATE, SCHEDULING = "template", "send_at"  # a template kept at the vendor; delivery held by the vendor until a time
OptionsT = TypeVar("OptionsT", bound=VendorSettings)
T = TypeVar("T")
ItemT = TypeVar("ItemT")


@dataclass(frozen=True)
class SentMatch:
    """The vendor's record of a message we sent: its id and the vendor's status word."""

    message_id: str | None
    status: str | None = None


class HasFeatures(Protocol):
    def features(self) -> frozenset[str]: ...


class Adapter(ABC, Generic[OptionsT]):
    """One vendor on one channel.  ``config`` is the vendor's options (its own settings class)."""

    channel: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, context: AdapterContext[OptionsT], vendor: Vendor) -> None:
        self.context = context
        self.vendor = vendor
        self.slug = context.slug
        self.config: OptionsT = context.options

    # -- capabilities -------------------------------------------------------------
    def unsupported(self, message: HasFeatures) -> frozenset[str]:
        return message.features() - self.capabilities

    def require(self, message: HasFeatures) -> None:
        missing = self.unsupported(message)
        if missing:
            hint = (
                f"{self.slug} has no scheduled sending: send now, or through a vendor that schedules"
                if SCHEDULING in missing
                else None
            )
            raise UnsupportedFeatureError(
                f"{self.slug} cannot send a message with {', '.join(sorted(missing))}", service=self.slug, hint=hint
            )

    # -- credentials and the pipeline --------------------------------------------
    def credentials(self, tenant_id: str | None) -> Credentials:
        """The credential to call with, checked against the fields the vendor declares for its method.

        A vendor that takes none (or, with ``credentials_optional``, has none
        stored) gets an empty credential of method ``none``.
        """
        provider = self.context.credentials
        if not self.vendor.auth or (self.vendor.credentials_optional and not provider.has(self.slug, tenant_id)):
            return Credentials(self.slug, AuthMethod.NONE, {}, tenant_id=tenant_id, source="none")
        creds = provider.get(self.slug, tenant_id)
        scheme = self.vendor.scheme(creds.auth_method)
        if scheme is None:
            accepted = ", ".join(s.method.value for s in self.vendor.auth) or "none"
            raise CredentialNotFoundError(
                f"{self.slug} takes {accepted} credentials, not {creds.auth_method.value}",
                service=self.slug,
                hint=f"connectorctl creds set {self.slug}",
            )
        missing = [name for name in scheme.needed if not creds.data.get(name)]
        if missing:
            raise CredentialNotFoundError(
                f"{self.slug} credentials lack {', '.join(missing)}",
                service=self.slug,
                hint=f"connectorctl creds set {self.slug}",
            )
        return creds

    def with_credentials(self, tenant_id: str | None, fn: Callable[[Credentials], T]) -> T:
        """Call ``fn`` with the vendor's credentials; for an oauth2 credential a 401 renews the token once."""
        return call_with_credentials(
            self.context.credentials, self.slug, tenant_id, fn, get=lambda: self.credentials(tenant_id)
        )

    def run(self, call: Call, fn: Callable[[], VendorResponse]) -> VendorResponse:
        return self.context.pipeline.execute(call, fn)

    # -- operations every channel has --------------------------------------------
    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        """One harmless authenticated read, so ``creds test`` proves a key works without sending anything."""
        raise UnsupportedFeatureError(f"{self.slug} has no credential check", service=self.slug)

    def preview(self, message: Any, *, tenant_id: str | None = None) -> dict[str, Any]:
        """What a send would do, without doing it (``send --dry-run``); HTTP adapters show the request."""
        return {"vendor": self.slug, "kind": "local", "action": self.describe_action(message)}

    def describe_action(self, message: Any) -> str:
        return f"hand the message to the {self.slug} adapter"

    askable: ClassVar[bool] = False  # whether find_sent can ask the vendor

    def find_sent(self, message: Any, *, key: str, since: float, tenant_id: str | None = None) -> SentMatch | None:
        """Ask the vendor whether it took the message sent under ``key`` (our message key) at or after ``since``.

        What settles a send that may or may not have reached the vendor (a
        worker killed mid-request) without risking a duplicate.
        """
        raise UnsupportedFeatureError(f"{self.slug} cannot be asked whether a message went out", service=self.slug)

    def close(self) -> None:
        """Release what the adapter holds open (an HTTP client's connections)."""


class EmailAdapter(Adapter[OptionsT]):
    channel = "email"
    batch_limit: ClassVar[int] = (
        0  # messages per call of the vendor's batch API, its documented maximum; 0 = no batch API
    )

    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        raise NotImplementedError(f"{type(self).__name__} does not implement send")

    def send_bulk(
        self,
        messages: Sequence[EmailMessage],
        *,
        tenant_id: str | None = None,
        concurrency: int = BULK_CONCURRENCY,
        correlation_id: str | None = None,
    ) -> list[SendResult | ConnectorctlError]:
        """One send per message; vendors with a batch API override this (see ``HttpEmailAdapter``)."""
        return send_each(
            lambda m: self.send(m.filled(), tenant_id=tenant_id, correlation_id=correlation_id), messages, concurrency
        )

    def validate_address(self, address: str) -> bool:
        from connectorctl.validation import is_valid_email

        return is_valid_email(address)

    def statistics(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        """Computed from our own integration log unless a vendor module overrides it."""
        return {**self.context.metrics(self.slug, start, end), "source": "integration_log"}

    def sender(self, message: EmailMessage) -> tuple[str, str | None]:
        """The message's sender, else ``vendors.<slug>.from_*``, else ``$MAIL_FROM_ADDRESS``/``$MAIL_FROM_NAME``."""
        from connectorctl.credentials.vendor_env import sender_default

        address = (
            message.from_email
            or self.config.from_email
            or (sender_default("email", "from_email") or ("connectorctl@localhost",))[0]
        )
        return address, message.from_name or self.config.from_name or (sender_default("email", "from_name") or (None,))[
            0
        ]


class SmsAdapter(Adapter[OptionsT]):
    channel = "sms"

    def send(
        self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        raise NotImplementedError(f"{type(self).__name__} does not implement send")

    def send_bulk(
        self, messages: Sequence[SmsMessage], *, tenant_id: str | None = None, concurrency: int = BULK_CONCURRENCY
    ) -> list[SendResult | ConnectorctlError]:
        return send_each(lambda m: self.send(m, tenant_id=tenant_id), messages, concurrency)

    def validate_phone_number(self, phone_number: str, tenant_id: str | None = None) -> Mapping[str, Any]:
        from connectorctl.validation import describe_phone

        return describe_phone(phone_number)

    def check_balance(self, tenant_id: str | None = None) -> Mapping[str, Any]:
        raise UnsupportedFeatureError(f"{self.slug} has no balance to check", service=self.slug)


def send_each(
    send: Callable[[ItemT], SendResult], items: Sequence[ItemT], concurrency: int
) -> list[SendResult | ConnectorctlError]:
    """Send every item with bounded concurrency; one failure never stops the others (its error takes its slot)."""

    def one(item: ItemT) -> SendResult | ConnectorctlError:
        try:
            return send(item)
        except ConnectorctlError as exc:
            return exc

    if concurrency <= 1 or len(items) <= 1:
        return [one(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as pool:
        return list(pool.map(one, items))
