"""The front door: a :class:`Connector` wires settings, state and adapters, and
hands out channel gateways that validate input and walk the vendor chain.

Application code depends on :class:`~connectorctl.domain.roles.EmailService` /
``SmsService``; the vendor (or failover chain) comes from config.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import replace
from datetime import datetime
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Mapping, Sequence, TypeVar

from connectorctl.adapters.base import BULK_CONCURRENCY, Adapter, EmailAdapter, SmsAdapter, send_each
from connectorctl.adapters.catalog import declaration, vendors_for
from connectorctl.adapters.context import AdapterContext
from connectorctl.config import load_settings
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.roles import CredentialProvider, IntegrationLogger
from connectorctl.errors import (
    CircuitOpenError,
    ConfigurationError,
    ConnectorctlError,
    ConnectorError,
    UnsupportedFeatureError,
    VendorUnavailableError,
)
from connectorctl.resilience.clock import Clock, SystemClock
from connectorctl.resilience.pipeline import Call, Hook, Pipeline, new_id
from connectorctl.settings import Settings
from connectorctl.store.db import StateDB
from connectorctl.validation import normalize_email, normalize_phone

if TYPE_CHECKING:
    import ssl

    import httpx

    from connectorctl.adapters.storage.base import StorageAdapter
    from connectorctl.outbox.store import OutboxMessage
    from connectorctl.payments.service import PaymentService
    from connectorctl.shipping.service import ShippingService
    from connectorctl.store.spool import AuditSpool

A = TypeVar("A", bound=Adapter[Any])
M = TypeVar("M", EmailMessage, SmsMessage)


class Connector:
    """One installation: settings + state file + pipeline + adapters (created lazily)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        config_path: str | os.PathLike[str] | None = None,
        clock: Clock | None = None,
        hooks: Sequence[Hook] | None = None,
        transports: Mapping[str, Any] | None = None,
        credentials: CredentialProvider | None = None,
    ) -> None:
        self.settings = settings or load_settings(config_path)
        self.clock: Clock = clock or SystemClock()
        self._extra_hooks = list(hooks or ())
        self._transports = dict(transports or {})
        if credentials is not None:
            self.credentials = credentials
        self._adapters: dict[tuple[str, str], Adapter[Any]] = {}
        self._ssl_contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @cached_property
    def db(self) -> StateDB:
        return StateDB(self.settings.database)

    @cached_property
    def credentials(self) -> CredentialProvider:
        """Store-backed provider (keyring master key, encrypted SQLite rows, env: references)."""
        from connectorctl.credentials.oauth2 import TokenEndpoint
        from connectorctl.credentials.provider import StoreCredentialProvider

        tokens = TokenEndpoint(self.settings, self.clock, lambda: self.pipeline, self.http_client)
        return StoreCredentialProvider(self.settings, lambda: self.db, self.clock, tokens)

    @cached_property
    def pipeline(self) -> Pipeline:
        from connectorctl.store.logs import IntegrationLogWriter

        self.log_writer = IntegrationLogWriter(self.db, self.audit_spool)
        return Pipeline(self.settings, self.db, self.clock, [self.log_writer, *self._extra_hooks])

    @cached_property
    def audit_spool(self) -> AuditSpool:
        """Where log rows wait when the database refuses them (``audit_spool`` in the config)."""
        from connectorctl.store.spool import AuditSpool, spool_path

        return AuditSpool(spool_path(self.settings))

    def drain_audit_spool(self) -> int:
        """Move rows waiting in the audit spool into the database; how many (StateStoreError if it refuses)."""
        health = self.db.health
        health.attach(self.audit_spool, self.db.label)
        return health.recover(self.db)

    def flush(self) -> None:
        """Commit rows left pending by a call interrupted while it waited.

        Every other row is committed before its call returns.
        """
        if "pipeline" in self.__dict__:
            self.log_writer.flush()

    def adapter(self, slug: str, channel: str) -> Adapter[Any]:
        """The vendor's adapter for ``channel``, created on first use with a narrow context."""
        key = (slug, channel)
        with self._lock:
            if key not in self._adapters:
                vendor = declaration(slug)
                if vendor is None or channel not in vendor.channels:
                    raise ConfigurationError(
                        f"unknown {channel} vendor {slug!r} (known: {', '.join(vendors_for(channel))})"
                    )
                context = AdapterContext(
                    slug,
                    vendor.options_for(self.settings.vendor(slug)),
                    settings=self.settings,
                    credentials=self.credentials,
                    pipeline=lambda: self.pipeline,
                    http_client=partial(self.http_client, slug),
                    clock=self.clock,
                    metrics=self.log_metrics,
                )
                self._adapters[key] = vendor.adapters[channel](context, vendor)
            return self._adapters[key]

    def channel_adapter(self, slug: str, kind: type[A]) -> A:
        """The vendor's adapter for ``kind``'s channel, typed as ``kind`` (e.g. ``EmailAdapter``)."""
        adapter = self.adapter(slug, kind.channel)
        if not isinstance(adapter, kind):
            raise ConfigurationError(
                f"{slug}: its {kind.channel} adapter {type(adapter).__name__} is not a {kind.__name__}"
            )
        return adapter

    def email(self, vendor: str | Sequence[str] | None = None, *, tenant_id: str | None = None) -> "EmailGateway":
        return EmailGateway(self, _chain(vendor, self.settings.email_vendor), tenant_id)

    def sms(self, vendor: str | Sequence[str] | None = None, *, tenant_id: str | None = None) -> "SmsGateway":
        return SmsGateway(self, _chain(vendor, self.settings.sms_vendor), tenant_id)

    def payments(self, vendor: str | Sequence[str] | None = None, *, tenant_id: str | None = None) -> "PaymentService":
        """A :class:`~connectorctl.domain.roles.PaymentGateway` over the configured vendor chain."""
        from connectorctl.payments.service import PaymentService

        return PaymentService(self, _chain(vendor, self.settings.payment_vendor), tenant_id)

    def storage(self, store: str | None = None) -> "StorageAdapter":
        """The configured object store (``storage_vendor``), or the one named: a :class:`CloudStorage`."""
        from connectorctl.adapters.storage.base import StorageAdapter

        return self.channel_adapter(store or self.settings.storage_vendor, StorageAdapter)

    def shipping(self, vendor: str | None = None, *, tenant_id: str | None = None) -> "ShippingService":
        """A :class:`~connectorctl.domain.roles.ShippingProvider` over ``vendor`` (default: ``shipping_vendor``)."""
        from connectorctl.shipping.service import ShippingService

        return ShippingService(self, vendor, tenant_id=tenant_id)

    def http_client(self, slug: str) -> "httpx.Client":
        """A new HTTP client for a vendor, on a test's injected transport if there is one.

        The vendor's TLS context is made once and shared by its clients (one per concurrent request).
        """
        from connectorctl.adapters.client import ssl_context, vendor_client

        vendor = self.settings.vendor(slug)
        context = self._ssl_contexts.get(slug)
        if context is None:
            context = self._ssl_contexts.setdefault(slug, ssl_context(slug, vendor))
        return vendor_client(slug, vendor, self._transports.get(slug), context)

    @cached_property
    def integration_log(self) -> IntegrationLogger:
        """The audit log as a library object: entries, reads, metrics, purge."""
        from connectorctl.store.integration_log import SqliteIntegrationLog

        return SqliteIntegrationLog(self.db, before_read=self.flush)

    def log_metrics(self, service: str, start: datetime, end: datetime) -> Mapping[str, Any]:
        return self.integration_log.get_metrics(service, start, end)

    def close(self) -> None:
        if "pipeline" in self.__dict__:
            self.log_writer.close()
            self.pipeline.breaker.cache.close()
        for adapter in self._adapters.values():
            adapter.close()
        if "db" in self.__dict__:
            self.db.close()

    def __enter__(self) -> "Connector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chain(vendor: str | Sequence[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if vendor is None:
        return default
    return (vendor,) if isinstance(vendor, str) else tuple(vendor)


class _Gateway(ABC, Generic[M]):
    channel: ClassVar[str] = ""

    def __init__(self, connector: Connector, chain: tuple[str, ...], tenant_id: str | None) -> None:
        self.connector = connector
        self.chain = chain
        self.tenant_id = tenant_id
        for slug in chain:
            connector.adapter(slug, self.channel)  # fail fast on an unknown vendor

    @abstractmethod
    def _send_with(self, slug: str, message: M, correlation_id: str) -> SendResult: ...

    def _walk(self, message: M, correlation_id: str | None = None, *, force: bool = False) -> SendResult:
        """Try each vendor in order, under one correlation id, and log every hop.

        Fail over on an open circuit or a transient failure that survived its
        retries; skip (with a logged reason) a vendor that lacks a feature the
        message needs; never fail over on a permanent rejection (validation,
        auth, a refused recipient: the next vendor would refuse it too), nor
        after an SMS failure that may have been delivered (see ``may_fail_over``).
        A suppressed recipient stops the send before any vendor is tried, unless ``force``.
        """
        from connectorctl.delivery.suppressions import check

        if not force:
            check(
                self.connector.db,
                self.tenant_id,
                message.recipients if isinstance(message, EmailMessage) else (message.to,),
            )
        correlation_id = correlation_id or new_id()
        last: ConnectorError | None = None
        hops: list[str] = []
        for slug in self.chain:
            missing = self.connector.adapter(slug, self.channel).unsupported(message)
            if missing:
                skip = UnsupportedFeatureError(f"{slug} skipped: lacks {', '.join(sorted(missing))}", service=slug)
                self._log_skip(slug, correlation_id, skip)
                hops.append(skip.message)
                continue
            try:
                result = self._send_with(slug, message, correlation_id)
            except UnsupportedFeatureError as exc:
                self._log_skip(slug, correlation_id, exc)
                hops.append(f"{slug} skipped: {exc.message}")
            except ConnectorError as exc:
                if isinstance(message, SmsMessage) and may_have_delivered(exc):
                    result = uncertain_sms(slug, message, exc, correlation_id)
                    self._record(result, correlation_id)  # a delivery report may still say what happened
                    return result
                if not may_fail_over(exc, message):
                    raise
                last = exc
                hops.append(f"{slug}: {exc.code}")
            else:
                self._record(result, correlation_id)
                return result
        if last is not None:
            if len(self.chain) > 1:
                last.hint = "every vendor in the chain failed: " + "; ".join(hops)
            raise last
        scheduling = (
            isinstance(message, EmailMessage) and message.send_at is not None and any("send_at" in hop for hop in hops)
        )
        raise UnsupportedFeatureError(
            "no configured vendor can send this message: " + "; ".join(hops),
            hint="no vendor in the chain schedules: send now, or add one that does (sendgrid, mailchimp, mailgun)"
            if scheduling
            else None,
        )

    def _record(self, result: SendResult, correlation_id: str) -> None:
        self._record_all([(result, correlation_id)])

    def _record_all(self, sent: Sequence[tuple[SendResult, str]]) -> None:
        """Remember sends for delivery reports, in one transaction.

        A state file that refuses must not turn a sent message into an error.
        """
        from connectorctl.delivery.store import record_all
        from connectorctl.errors import StateStoreError

        try:
            record_all(
                self.connector.db, sent, channel=self.channel, tenant_id=self.tenant_id, now=self.connector.clock.time()
            )
        except StateStoreError as exc:
            logging.getLogger("connectorctl.delivery").warning(
                "send %s not recorded for delivery tracking: %s", ", ".join(sorted({c for _, c in sent})), exc.message
            )

    def _log_skip(self, slug: str, correlation_id: str, exc: ConnectorError) -> None:
        """A skipped vendor never reaches the pipeline's call path, so its hop is recorded here."""
        call = Call(
            slug,
            f"send_{self.channel}",
            "failover:skip",
            "SKIP",
            tenant_id=self.tenant_id,
            correlation_id=correlation_id,
        )
        self.connector.pipeline.record_skip(call, exc)

    @abstractmethod
    def send(self, message: M, *, correlation_id: str | None = None) -> SendResult: ...

    @abstractmethod
    def prepared(self, message: M) -> M:
        """The message checked and normalised as a send would (addresses, numbers, header injection)."""

    def enqueue(self, message: M, *, key: str | None = None) -> "OutboxMessage":
        """Store the message in the outbox and return at once; a worker (``connectorctl outbox work``) delivers it.

        The same ``key`` enqueued twice is one message.  Bad input is refused
        here, not later by a worker.
        """
        from connectorctl.outbox.codec import encode
        from connectorctl.outbox.store import OutboxStore

        return OutboxStore(self.connector.db, self.connector.clock).enqueue(
            self.channel, encode(self.prepared(message)), self.chain, key=key, tenant_id=self.tenant_id
        )

    def send_bulk(
        self, messages: Sequence[M], *, concurrency: int = BULK_CONCURRENCY
    ) -> list[SendResult | ConnectorctlError]:
        """Each message through the whole chain; one failure never stops the others."""
        return send_each(self.send, messages, concurrency)


def may_fail_over(exc: ConnectorError, message: EmailMessage | SmsMessage) -> bool:
    """Whether the next vendor may be tried after ``exc``.

    No SMS vendor deduplicates, so after a failure that may have reached the
    handset (a timeout, a connection dropped mid-answer, a 500/502/504) the
    SMS is not re-sent elsewhere (``_walk`` reports it uncertain); a 503, a
    429, a refused connection or an open circuit prove the vendor did not take it.
    """
    if isinstance(exc, CircuitOpenError):
        return True
    if not exc.transient:
        return False
    return not (isinstance(message, SmsMessage) and may_have_delivered(exc))


def may_have_delivered(exc: ConnectorError) -> bool:
    """A transient failure that does not prove the vendor left the message alone."""
    if isinstance(exc, CircuitOpenError) or not exc.transient:
        return False
    return not (exc.vendor_processed is False or (isinstance(exc, VendorUnavailableError) and exc.http_status == 503))


def uncertain_sms(slug: str, message: SmsMessage, exc: ConnectorError, correlation_id: str) -> SendResult:
    """Neither Twilio nor Vonage can deduplicate an SMS or be asked by our id whether it went out, so after
    an ambiguous failure it is neither retried nor re-sent elsewhere: the caller learns it is uncertain."""
    reason = (
        f"{exc.code}: {exc.message}; the SMS may have been delivered, so it was not retried "
        f"({slug} cannot deduplicate it): check the vendor's message log before sending again"
    )
    return SendResult(
        slug,
        None,
        (RecipientResult(message.to, DeliveryStatus.UNCERTAIN, None, reason),),
        correlation_id,
        raw={"error": exc.to_dict()},
    )


class EmailGateway(_Gateway[EmailMessage]):
    """Implements :class:`~connectorctl.domain.roles.EmailService` over the configured chain."""

    channel = "email"

    def send(self, message: EmailMessage, *, correlation_id: str | None = None, force: bool = False) -> SendResult:
        """``correlation_id`` lets a caller (the bulk journal) know the id before the call;
        ``force`` sends even to a suppressed recipient."""
        return self._walk(validated_email(message).filled(), correlation_id, force=force)

    def prepared(self, message: EmailMessage) -> EmailMessage:
        return validated_email(message)

    def _send_with(self, slug: str, message: EmailMessage, correlation_id: str) -> SendResult:
        return self.connector.channel_adapter(slug, EmailAdapter).send(
            message, tenant_id=self.tenant_id, correlation_id=correlation_id
        )

    def batch_limit(self) -> int:
        """Messages per call of the first vendor's batch API (0: it has none, so bulk sends go one by one)."""
        return self.connector.channel_adapter(self.chain[0], EmailAdapter).batch_limit

    def send_bulk(
        self,
        messages: Sequence[EmailMessage],
        *,
        concurrency: int = BULK_CONCURRENCY,
        correlation_id: str | None = None,
    ) -> list[SendResult | ConnectorctlError]:
        """Through each vendor's batch API where it has one, each message with its own result.

        A message the first vendor cannot carry, or whose batch failed in a way
        the next vendor may not (an outage, an open circuit), goes on to the rest
        of the chain, batched again there.  ``correlation_id`` ties every call
        of this bulk send together (the bulk journal knows it in advance).
        """
        from connectorctl.delivery.suppressions import check

        outcomes: list[SendResult | ConnectorctlError | None] = [None] * len(messages)
        ready: list[tuple[int, EmailMessage]] = []
        for i, message in enumerate(messages):
            try:
                checked = validated_email(message)
                check(self.connector.db, self.tenant_id, checked.recipients)
            except ConnectorctlError as exc:
                outcomes[i] = exc
            else:
                ready.append((i, checked))
        results = self._send_checked([m for _, m in ready], concurrency, correlation_id or new_id())
        for (i, _), outcome in zip(ready, results, strict=True):
            outcomes[i] = outcome
        return [o if o is not None else ConnectorError("no result for this message") for o in outcomes]

    def _send_checked(
        self, messages: Sequence[EmailMessage], concurrency: int, correlation_id: str
    ) -> list[SendResult | ConnectorctlError]:
        slug, rest = self.chain[0], self.chain[1:]
        adapter = self.connector.channel_adapter(slug, EmailAdapter)
        outcomes: list[SendResult | ConnectorctlError | None] = [None] * len(messages)
        batch: list[int] = []
        onward: list[int] = []
        for i, message in enumerate(messages):
            missing = adapter.unsupported(message)
            if not missing:
                batch.append(i)
                continue
            skip = UnsupportedFeatureError(f"{slug} skipped: lacks {', '.join(sorted(missing))}", service=slug)
            self._log_skip(slug, correlation_id, skip)
            outcomes[i] = skip
            onward.append(i)
        results = adapter.send_bulk(
            [messages[i] for i in batch],
            tenant_id=self.tenant_id,
            concurrency=concurrency,
            correlation_id=correlation_id,
        )
        for i, outcome in zip(batch, results, strict=True):
            outcomes[i] = outcome
            if isinstance(outcome, ConnectorError) and may_fail_over(outcome, messages[i]):
                onward.append(i)
        self._record_all([(r, r.correlation_id or correlation_id) for r in results if isinstance(r, SendResult)])
        if rest and onward:
            tail = EmailGateway(self.connector, rest, self.tenant_id)._send_checked(
                [messages[i] for i in onward], concurrency, correlation_id
            )
            for i, outcome in zip(onward, tail, strict=True):
                outcomes[i] = outcome
        return [o if o is not None else ConnectorError("no result for this message") for o in outcomes]

    def validate_address(self, address: str) -> bool:
        from connectorctl.validation import is_valid_email

        return is_valid_email(address)

    def statistics(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        return self.connector.channel_adapter(self.chain[0], EmailAdapter).statistics(start, end)


class SmsGateway(_Gateway[SmsMessage]):
    """Implements :class:`~connectorctl.domain.roles.SmsService` over the configured chain."""

    channel = "sms"

    def send(self, message: SmsMessage, *, correlation_id: str | None = None, force: bool = False) -> SendResult:
        return self._walk(replace(message, to=normalize_phone(message.to)), correlation_id, force=force)

    def prepared(self, message: SmsMessage) -> SmsMessage:
        if not message.body:  # a send finds this in the adapter; a queued message must be refused before it is stored
            from connectorctl.errors import InvalidInputError

            raise InvalidInputError("an SMS needs a body")
        return replace(message, to=normalize_phone(message.to))

    def _send_with(self, slug: str, message: SmsMessage, correlation_id: str) -> SendResult:
        return self.connector.channel_adapter(slug, SmsAdapter).send(
            message, tenant_id=self.tenant_id, correlation_id=correlation_id
        )

    def validate_phone_number(self, phone_number: str) -> Mapping[str, Any]:
        return self.connector.channel_adapter(self.chain[0], SmsAdapter).validate_phone_number(
            phone_number, self.tenant_id
        )

    def check_balance(self) -> Mapping[str, Any]:
        return self.connector.channel_adapter(self.chain[0], SmsAdapter).check_balance(self.tenant_id)


def validated_email(message: EmailMessage) -> EmailMessage:
    from connectorctl.errors import InvalidInputError

    if not message.to:
        raise InvalidInputError("an email needs at least one recipient")
    # A line break in a header would inject headers (Bcc: ...) or crash the MIME builder mid-send.
    for what, value in (
        ("subject", message.subject),
        ("from name", message.from_name),
        *((f"header {name!r}", f"{name}{value}") for name, value in message.headers.items()),
    ):
        if value and ("\r" in value or "\n" in value):
            raise InvalidInputError(f"the {what} contains a line break")
    for attachment in message.attachments:  # it becomes a Content-Disposition header parameter
        if "\r" in attachment.filename or "\n" in attachment.filename:
            raise InvalidInputError(f"the attachment file name {attachment.filename!r} contains a line break")
    for name in message.headers:  # RFC 5322 field name: printable ASCII, no space or colon
        if not name or any(not 33 <= ord(ch) <= 126 or ch == ":" for ch in name):
            raise InvalidInputError(f"invalid header name {name!r}: use letters, digits and '-' (e.g. X-Order-Id)")
    return replace(
        message,
        to=tuple(normalize_email(a) for a in message.to),
        cc=tuple(normalize_email(a) for a in message.cc),
        bcc=tuple(normalize_email(a) for a in message.bcc),
        reply_to=normalize_email(message.reply_to) if message.reply_to else None,
        from_email=normalize_email(message.from_email) if message.from_email else None,
    )
