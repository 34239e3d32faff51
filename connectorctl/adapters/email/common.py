"""What every HTTP email vendor shares; vendor modules only translate.

A vendor module supplies ``build_send`` (our :class:`EmailMessage` -> one
:class:`VendorRequest`), ``parse_send`` (the 2xx answer -> a truthful
:class:`SendResult`) and ``build_verify`` (one harmless authenticated read).
Credentials, the pipeline :class:`Call`, secret scrubbing, the httpx request
and error mapping all happen in :mod:`connectorctl.adapters.http`, so a new
vendor never repeats them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Hashable, Iterator, Mapping, Sequence

import httpx

from connectorctl.adapters.base import BULK_CONCURRENCY, MESSAGE_KEY, EmailAdapter, OptionsT, send_each
from connectorctl.adapters.http import HttpMessageAdapter, VendorRequest
from connectorctl.domain.messages import (
    PLACEHOLDER,
    Attachment,
    DeliveryStatus,
    EmailMessage,
    RecipientResult,
    SendResult,
)
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError, ConnectorctlError, ConnectorError, ValidationError
from connectorctl.resilience.pipeline import new_id
from connectorctl.settings import VendorSettings

__all__ = [
    "HttpEmailAdapter",
    "RegionalOptions",
    "VendorRequest",
    "all_with",
    "attachment_summary",
    "b64",
    "content_key",
    "inline_values",
    "utc",
    "with_merge_tags",
]


@dataclass(frozen=True)
class RegionalOptions(VendorSettings):
    """Options of a vendor with regional API hosts (``regions``): ``region`` picks one unless ``base_url`` is set."""

    regions: ClassVar[Mapping[str, str]] = {}
    region: str | None = None  # "us" (default) or another of the vendor's regions, e.g. "eu"

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if self.region is not None and self.region.lower() not in self.regions:
            yield "region", f"unknown region {self.region!r} (known: {', '.join(self.regions)})"

    def regional_root(self, slug: str) -> str:
        key = (self.region or "us").lower()
        if key not in self.regions:
            raise ConfigurationError(
                f"vendors.{slug}.region: unknown region {self.region!r} (known: {', '.join(self.regions)})"
            )
        return self.regions[key].rstrip("/")


class HttpEmailAdapter(HttpMessageAdapter[OptionsT, EmailMessage], EmailAdapter[OptionsT]):
    """Base of every HTTP email adapter: send, bulk, verify and statistics through the pipeline."""

    @property
    def base_url(self) -> str:
        if isinstance(self.config, RegionalOptions) and not self.config.base_url:
            return self.config.regional_root(self.slug)
        return super().base_url

    def build_statistics(self, start: datetime, end: datetime, creds: Credentials) -> VendorRequest:
        """Overridden by vendors with a statistics API; otherwise the integration log is the only source."""
        raise NotImplementedError

    def parse_statistics(self, response: httpx.Response) -> Mapping[str, Any]:
        return response.json()

    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        return super().send(message.filled(), tenant_id=tenant_id, correlation_id=correlation_id)

    def precheck(self, message: EmailMessage) -> None:
        """What must hold before any request: features the vendor carries, and a body."""
        self.require(message)
        if not message.text and not message.html and not message.template_id:
            raise ValidationError(
                f"{self.slug}: an email needs a text or an HTML body, or a template", service=self.slug
            )

    # -- batches: one vendor call for many messages --------------------------------------
    def batch_key(self, message: EmailMessage) -> Hashable | None:
        """What messages must share to travel in one batch call; None sends the message alone.

        The default: one ``to`` address, no cc/bcc, and everything but the
        recipient and its merge data equal (each recipient gets its own copy).
        """
        if (
            len(message.to) != 1
            or message.cc
            or message.bcc
            or (not message.template_id and inline_values(message) is None)
        ):
            return None
        return content_key(message)

    def build_batch(self, messages: Sequence[EmailMessage], creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_batch(self, response: httpx.Response, messages: Sequence[EmailMessage]) -> list[SendResult]:
        raise NotImplementedError

    def send_bulk(
        self,
        messages: Sequence[EmailMessage],
        *,
        tenant_id: str | None = None,
        concurrency: int = BULK_CONCURRENCY,
        correlation_id: str | None = None,
    ) -> list[SendResult | ConnectorctlError]:
        """Messages that share a ``batch_key`` go out in batch calls of at most ``batch_limit``, the others one by one.

        A batch the vendor refuses as a whole (400/422) was taken by no one, so
        its messages are then sent one by one: the bad one fails alone.
        """
        if not self.batch_limit:
            return super().send_bulk(
                messages, tenant_id=tenant_id, concurrency=concurrency, correlation_id=correlation_id
            )

        def one(message: EmailMessage) -> SendResult | ConnectorctlError:
            try:
                return self.send(message, tenant_id=tenant_id, correlation_id=correlation_id)
            except ConnectorctlError as exc:
                return exc

        def send_group(group: list[EmailMessage]) -> list[SendResult | ConnectorctlError]:
            if len(group) == 1:
                return [one(group[0])]
            cid = correlation_id or new_id()
            group = [replace(m, metadata={**m.metadata, MESSAGE_KEY: cid}) for m in group]  # our key, on every copy
            try:
                response = self.execute(
                    "send_email_batch",
                    lambda creds: self.build_batch(group, creds),
                    lambda r: self.parse_batch(r, group),
                    tenant_id=tenant_id,
                    correlation_id=cid,
                )
            except ValidationError:
                return [one(m) for m in group]
            return [replace(r, correlation_id=cid) for r in response.value]

        return self.send_batches(messages, self.batch_groups(messages), send_group, concurrency)

    def batch_groups(self, messages: Sequence[EmailMessage]) -> list[list[int]]:
        """Indexes of ``messages`` grouped by ``batch_key``: at most ``batch_limit`` each, no address twice in one."""
        order: list[list[int]] = []
        open_groups: dict[Hashable, tuple[list[int], set[str]]] = {}
        for i, m in enumerate(messages):
            try:
                self.precheck(m)
                key = self.batch_key(m)
            except ConnectorctlError:
                key = None  # send() reports it in its own slot
            if key is None:
                order.append([i])
                continue
            address = m.to[0].lower()
            group, seen = open_groups.get(key, ([], set()))
            if not group or len(group) >= self.batch_limit or address in seen:
                group, seen = [], set()
                open_groups[key] = (group, seen)
                order.append(group)
            group.append(i)
            seen.add(address)
        return order

    def send_batches(
        self,
        messages: Sequence[EmailMessage],
        batches: Sequence[Sequence[int]],
        send_batch: Callable[[list[EmailMessage]], Sequence[SendResult | ConnectorctlError]],
        concurrency: int,
    ) -> list[SendResult | ConnectorctlError]:
        """Run vendor batch calls (lists of message indexes) with bounded concurrency and put
        each outcome back in its message's slot; a failed batch fails only its own messages."""
        results: list[SendResult | ConnectorctlError | None] = [None] * len(messages)

        def run(indices: Sequence[int]) -> SendResult:
            try:
                outcomes = send_batch([messages[i] for i in indices])
            except ConnectorctlError as exc:
                outcomes = [exc] * len(indices)
            for i, outcome in zip(indices, outcomes, strict=True):
                results[i] = outcome
            return SendResult(self.slug, None, ())

        send_each(run, list(batches), concurrency)
        missing = ConnectorError(f"{self.slug}: the vendor gave no result for this message", service=self.slug)
        return [missing if r is None else r for r in results]

    def statistics(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        """Our integration-log numbers, plus the vendor's own counts where it has an API."""
        stats: dict[str, Any] = dict(super().statistics(start, end))
        if type(self).build_statistics is HttpEmailAdapter.build_statistics:
            return stats
        try:
            response = self.execute(
                "statistics",
                lambda creds: self.build_statistics(start, end, creds),
                self.parse_statistics,
                idempotent=True,
            )
        except ConnectorError as exc:  # e.g. a send-only key may not read stats: our own numbers still stand
            stats["vendor_error"] = exc.to_dict()
        else:
            stats["vendor"] = dict(response.value)
            stats["source"] = "vendor_api+integration_log"
        return stats


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def attachment_summary(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """What the log keeps of an attachment: never its bytes."""
    return [{"filename": a.filename, "content_type": a.content_type, "size": len(a.content)} for a in attachments]


def all_with(
    vendor: str, message: EmailMessage, status: DeliveryStatus, message_id: str | None, reason: str | None = None
) -> SendResult:
    """Every recipient of ``message`` with one status (a vendor that answers per message, not per recipient)."""
    return SendResult(
        vendor, message_id, tuple(RecipientResult(r, status, message_id, reason) for r in message.recipients)
    )


def utc(when: datetime) -> datetime:
    """A scheduled time in UTC; a naive one is taken as UTC already."""
    return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)


def content_key(m: EmailMessage) -> tuple[Any, ...]:
    """Everything of a message but its recipients and merge data: what a batch's messages share."""
    return (
        m.subject,
        m.text,
        m.html,
        m.from_email,
        m.from_name,
        m.reply_to,
        tuple(sorted(m.headers.items())),
        m.tags,
        tuple(sorted(m.metadata.items())),
        tuple((a.filename, a.content, a.content_type) for a in m.attachments),
        m.template_id,
        m.send_at,
    )


def with_merge_tags(message: EmailMessage, tag: Callable[[str], str]) -> EmailMessage:
    """The message with each ``{{name}}`` as the vendor's own merge tag, for the vendor to fill per recipient."""

    def rewrite(text: str | None) -> str | None:
        return PLACEHOLDER.sub(lambda m: tag(m.group(1).lower()), text) if text else text

    return replace(
        message,
        subject=rewrite(message.subject) or "",
        text=rewrite(message.text),
        html=rewrite(message.html),
        merge_data={},
    )


def inline_values(message: EmailMessage) -> dict[str, str] | None:
    """The values of the placeholders a message uses, or None when one has no value (it then goes alone, and fails)."""
    names, values = message.placeholders(), message.merge_values()
    return None if names - values.keys() else {name: values[name] for name in sorted(names)}
