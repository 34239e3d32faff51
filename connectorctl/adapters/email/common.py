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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import httpx

from connectorctl.adapters.base import EmailAdapter, OptionsT, send_each
from connectorctl.adapters.http import HttpMessageAdapter, VendorRequest
from connectorctl.domain.messages import Attachment, DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError, ConnectorctlError, ConnectorError, ValidationError
from connectorctl.settings import VendorSettings

__all__ = ["HttpEmailAdapter", "RegionalOptions", "VendorRequest", "all_with", "attachment_summary", "b64", "chunks"]


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

    def precheck(self, message: EmailMessage) -> None:
        """What must hold before any request: features the vendor carries, and a body."""
        self.require(message)
        if not message.text and not message.html:
            raise ValidationError(f"{self.slug}: an email needs a text or an HTML body", service=self.slug)

    def send_batches(
        self,
        messages: Sequence[EmailMessage],
        batches: Sequence[Sequence[int]],
        send_batch: Callable[[list[EmailMessage]], list[SendResult | ConnectorError]],
        concurrency: int,
    ) -> list[SendResult | ConnectorctlError]:
        """Run vendor batch calls (lists of message indexes) with bounded concurrency and put
        each outcome back in its message's slot; a failed batch fails only its own messages."""
        results: list[SendResult | ConnectorctlError | None] = [None] * len(messages)

        def run(indices: Sequence[int]) -> SendResult:
            try:
                outcomes = send_batch([messages[i] for i in indices])
            except ConnectorError as exc:
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


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
