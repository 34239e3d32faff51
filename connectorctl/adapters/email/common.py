"""The send flow shared by every HTTP email vendor; vendor modules only translate.

A vendor module supplies ``build_send`` (our :class:`EmailMessage` -> one
:class:`VendorRequest`), ``parse_send`` (the 2xx answer -> a truthful
:class:`SendResult`) and ``build_verify`` (one harmless authenticated read).
Credentials, the pipeline :class:`Call`, secret scrubbing, the httpx request
and error mapping all happen here or in :mod:`connectorctl.adapters.http`, so a
new vendor never repeats them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import httpx

from connectorctl.adapters.base import EmailAdapter
from connectorctl.adapters.http import HttpAdapterMixin
from connectorctl.domain.messages import Attachment, DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError, ConnectorError, CredentialNotFoundError, ValidationError
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id


@dataclass(frozen=True)
class VendorRequest:
    """One HTTP request as a vendor module describes it; ``log`` is what the integration log keeps."""

    method: str
    path: str
    json: Any = None
    data: Any = None
    files: Any = None
    params: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    log: Any = None


class HttpEmailAdapter(EmailAdapter, HttpAdapterMixin):
    """Base of every HTTP email adapter: runs send / verify / statistics through the pipeline."""

    regional_base_urls: Mapping[str, str] = {}
    required_credentials: tuple[str, ...] = ("api_key",)

    @property
    def base_url(self) -> str:
        if self.config.base_url:
            return self.config.base_url.rstrip("/")
        if self.regional_base_urls:
            region = (self.config.region or "us").lower()
            if region not in self.regional_base_urls:
                raise ConfigurationError(
                    f"vendors.{self.slug}.region: unknown region {self.config.region!r} (known: {', '.join(self.regional_base_urls)})"
                )
            return self.regional_base_urls[region].rstrip("/")
        return self.default_base_url.rstrip("/")

    # -- what vendor modules implement ------------------------------------------
    def build_send(self, message: EmailMessage, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        raise NotImplementedError

    def build_verify(self, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def build_statistics(self, start: datetime, end: datetime, creds: Credentials) -> VendorRequest:
        """Overridden by vendors with a statistics API; otherwise the integration log is the only source."""
        raise NotImplementedError

    def parse_statistics(self, response: httpx.Response) -> Mapping[str, Any]:
        return response.json()

    # -- the flow ---------------------------------------------------------------
    def credentials(self, tenant_id: str | None) -> Credentials:
        creds = self.connector.credentials.get(self.slug, tenant_id)
        missing = [name for name in self.required_credentials if not creds.data.get(name)]
        if missing:
            raise CredentialNotFoundError(
                f"{self.slug} credentials lack {', '.join(missing)}", service=self.slug, hint=f"connectorctl creds set {self.slug}"
            )
        return creds

    def send(self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        correlation_id = correlation_id or new_id()
        self.precheck(message)
        creds = self.credentials(tenant_id)
        request = self.build_send(message, creds)
        try:
            response = self.execute(request, "send_email", creds, lambda r: self.parse_send(r, message),
                                    tenant_id=tenant_id, correlation_id=correlation_id, idempotent=False)
        except ConnectorError as exc:
            result = self.rejection_result(exc, message)
            if result is None:
                raise
            return replace(result, correlation_id=correlation_id)
        return replace(response.value, correlation_id=correlation_id)

    def precheck(self, message: EmailMessage) -> None:
        """What must hold before any request: features the vendor carries, and a body."""
        self.require(message)
        if not message.text and not message.html:
            raise ValidationError(f"{self.slug}: an email needs a text or an HTML body", service=self.slug)

    def rejection_result(self, exc: ConnectorError, message: EmailMessage) -> SendResult | None:
        """A vendor error that really is a per-recipient refusal (Postmark's inactive
        recipient) becomes a truthful result here; None re-raises the error."""
        return None

    def send_batches(self, messages: Sequence[EmailMessage], batches: Sequence[Sequence[int]],
                     send_batch: Callable[[list[EmailMessage]], list[SendResult | ConnectorError]],
                     concurrency: int) -> list[SendResult | ConnectorError]:
        """Run vendor batch calls (lists of message indexes) with bounded concurrency and put
        each outcome back in its message's slot; a failed batch fails only its own messages."""
        results: list[SendResult | ConnectorError | None] = [None] * len(messages)

        def run(indices: Sequence[int]) -> SendResult:
            try:
                outcomes = send_batch([messages[i] for i in indices])
            except ConnectorError as exc:
                outcomes = [exc] * len(indices)
            for i, outcome in zip(indices, outcomes):
                results[i] = outcome
            return SendResult(self.slug, None, ())

        self._bulk(run, list(batches), concurrency)
        missing = ConnectorError(f"{self.slug}: the vendor gave no result for this message", service=self.slug)
        return [missing if r is None else r for r in results]

    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        creds = self.credentials(tenant_id)
        return self.execute(self.build_verify(creds), "verify_credentials", creds, _json_or_none, tenant_id=tenant_id, idempotent=True)

    def statistics(self, start: datetime, end: datetime) -> Mapping[str, Any]:
        """Our integration-log numbers, plus the vendor's own counts where it has an API."""
        stats: dict[str, Any] = dict(super().statistics(start, end))
        if type(self).build_statistics is not HttpEmailAdapter.build_statistics:
            creds = self.credentials(None)
            request = self.build_statistics(start, end, creds)
            try:
                stats["vendor"] = dict(self.execute(request, "statistics", creds, self.parse_statistics, idempotent=True).value)
            except ConnectorError as exc:  # e.g. a send-only key may not read stats: our own numbers still stand
                stats["vendor_error"] = exc.to_dict()
            else:
                stats["source"] = "vendor_api+integration_log"
        return stats

    def execute(self, request: VendorRequest, operation: str, creds: Credentials, parse: Callable[[httpx.Response], Any], *,
                tenant_id: str | None = None, correlation_id: str | None = None, idempotent: bool = False) -> VendorResponse:
        url = request.path if request.path.startswith(("http://", "https://")) else self.base_url + request.path
        logged = request.log if request.log is not None else (request.json if request.json is not None else request.data)
        call = Call(self.slug, operation, url, request.method, request_data=with_credential_source(logged, creds), idempotent=idempotent,
                    tenant_id=tenant_id, correlation_id=correlation_id, secrets=secret_values(creds))

        def send(client: httpx.Client) -> httpx.Response:
            return client.request(request.method, url, json=request.json, data=request.data, files=request.files,
                                  params=request.params, headers=dict(request.headers), auth=request.auth)

        def checked_parse(response: httpx.Response) -> Any:
            try:
                return parse(response)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                # a 2xx we cannot read: the vendor may well have acted, so this must not fail over
                raise ConnectorError(f"{self.slug}: unreadable answer to {operation} (HTTP {response.status_code}, {type(exc).__name__}); "
                                     "the vendor may have accepted it", service=self.slug, http_status=response.status_code,
                                     response_data={"text": response.text[:500]}) from None

        return self.http(call, send, checked_parse)


def with_credential_source(logged: Any, creds: Credentials) -> dict[str, Any]:
    """What the log keeps of a request, plus where its credential came from (``env:SENDGRID_API_KEY``,
    ``store``, ``store:tenant``): an operator can trace which key a call used without the key itself."""
    if logged is None:
        return {"credential_source": creds.source}
    if isinstance(logged, Mapping):
        return {**logged, "credential_source": creds.source}
    return {"requests": logged, "credential_source": creds.source}  # a batch: one entry per message


def secret_values(creds: Credentials) -> tuple[str, ...]:
    return tuple(v for v in creds.data.values() if isinstance(v, str) and v)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json() if response.content else None
    except ValueError:
        return None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def attachment_summary(attachments: Sequence[Attachment]) -> list[dict[str, Any]]:
    """What the log keeps of an attachment: never its bytes."""
    return [{"filename": a.filename, "content_type": a.content_type, "size": len(a.content)} for a in attachments]


def all_with(vendor: str, message: EmailMessage, status: DeliveryStatus, message_id: str | None, reason: str | None = None) -> SendResult:
    """Every recipient of ``message`` with one status (a vendor that answers per message, not per recipient)."""
    return SendResult(vendor, message_id, tuple(RecipientResult(r, status, message_id, reason) for r in message.recipients))


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
