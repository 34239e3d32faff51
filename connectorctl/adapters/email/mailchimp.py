"""Mailchimp Transactional (Mandrill) ``messages/send``.

The API key travels in the JSON body as ``key`` (there is no header auth), so
the log relies on the redactor's ``key`` field and on ``Call.secrets``.  The
official SDK calls ``/api/1.3/...send.json`` while the OpenAPI document serves
``/api/1.4/...send``: ``api_version`` picks one ("1.3" or "1.4", or "1.4.json" to
keep the suffix), so either can be followed.  ``base_url`` is the host root.

Mandrill answers HTTP 200 with one status per recipient, *including* rejected
and invalid ones: those become failures for those recipients, never a success.
Errors are branched on the body's ``name`` (an ``Invalid_Key`` may come back
with 401 or with 500), then on the status code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import httpx

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, BULK_CONCURRENCY
from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.email.common import HttpEmailAdapter, VendorRequest, attachment_summary, b64
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import (
    AuthenticationError,
    ConnectorctlError,
    ConnectorError,
    RateLimitedError,
    ValidationError,
    VendorRejectedError,
)
from connectorctl.resilience.pipeline import new_id
from connectorctl.settings import VendorSettings

STATUSES = {
    "sent": DeliveryStatus.ACCEPTED,
    "queued": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.SCHEDULED,
    "rejected": DeliveryStatus.REJECTED,
    "invalid": DeliveryStatus.INVALID,
}
ERROR_NAMES: Mapping[str, type[ConnectorError]] = {
    "Invalid_Key": AuthenticationError,
    "ValidationError": ValidationError,
    "PaymentRequired": VendorRejectedError,
    "Unknown_Subaccount": VendorRejectedError,
    "Unknown_Template": ValidationError,
    "RateLimited": RateLimitedError,
}  # GeneralError and the rest: the status code decides (5xx transient)
MAX_RECIPIENTS_PER_CALL = 1000


@dataclass(frozen=True)
class MailchimpOptions(VendorSettings):
    api_version: str | None = None  # "1.3" (the SDK's paths, default), "1.4" (the OpenAPI paths) or "1.4.json"


class MailchimpEmailAdapter(HttpEmailAdapter[MailchimpOptions]):
    capabilities = ALL_EMAIL_FEATURES
    default_base_url = "https://mandrillapp.com"

    def endpoint(self, method: str) -> str:
        """``api_version``: "1.3" (the SDK's ``/api/1.3/…send.json``, the default), "1.4" (the
        OpenAPI ``/api/1.4/…send``) or either with ``.json`` appended to force the suffix."""
        version = self.config.api_version or "1.3"
        if version.endswith(".json"):
            version, suffix = version[: -len(".json")], ".json"
        else:
            suffix = ".json" if version == "1.3" else ""
        return f"/api/{version}/{method}{suffix}"

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        return self._request(self._message(message, preserve_recipients=True), message, creds)

    def _request(self, body_message: dict[str, Any], sample: EmailMessage, creds: Credentials) -> VendorRequest:
        body = {"key": creds.data["api_key"], "message": body_message, "async": False}
        log = {
            "message": {**body_message, "attachments": attachment_summary(sample.attachments)}
            if sample.attachments
            else body_message
        }
        return VendorRequest("POST", self.endpoint("messages/send"), json=body, log=log)

    def _message(
        self, message: EmailMessage, *, preserve_recipients: bool, to: Sequence[str] | None = None
    ) -> dict[str, Any]:
        from_email, from_name = self.sender(message)
        recipients = [{"email": a, "type": "to"} for a in (to if to is not None else message.to)]
        recipients += [{"email": a, "type": "cc"} for a in message.cc] + [
            {"email": a, "type": "bcc"} for a in message.bcc
        ]
        body: dict[str, Any] = {
            "subject": message.subject,
            "from_email": from_email,
            "to": recipients,
            "preserve_recipients": preserve_recipients,
        }
        if from_name:
            body["from_name"] = from_name
        if message.text:
            body["text"] = message.text
        if message.html:
            body["html"] = message.html
        headers = dict(message.headers)
        if message.reply_to:
            headers["Reply-To"] = message.reply_to
        if headers:
            body["headers"] = headers
        if message.tags:
            body["tags"] = list(message.tags)
        if message.metadata:
            body["metadata"] = dict(message.metadata)
        if message.attachments:
            body["attachments"] = [
                {"type": a.content_type, "name": a.filename, "content": b64(a.content)} for a in message.attachments
            ]
        return body

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        return _results(self.slug, response, message.recipients)

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return VendorRequest("POST", self.endpoint("users/ping2"), json={"key": creds.data["api_key"]}, log={})

    # -- errors -------------------------------------------------------------------
    def error_class(self, response: httpx.Response, body: Any) -> type[ConnectorError] | None:
        if isinstance(body, Mapping) and body.get("status") == "error":
            return ERROR_NAMES.get(str(body.get("name")))
        return None

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping) and body.get("status") == "error":
            return f"{body.get('name')} (code {body.get('code')}): {body.get('message')}"
        return super().error_message(response, body)

    # -- bulk: messages that differ only in their To go out as one call -------------
    def send_bulk(
        self, messages: Sequence[EmailMessage], *, tenant_id: str | None = None, concurrency: int = BULK_CONCURRENCY
    ) -> list[SendResult | ConnectorctlError]:
        """One ``messages/send`` per group of same-content messages, with
        ``preserve_recipients: false`` so each recipient gets a private copy; the
        per-recipient answer maps back to each message exactly."""

        def send_group(group: list[EmailMessage]) -> list[SendResult | ConnectorError]:
            if len(group) == 1:
                return [self.send(group[0], tenant_id=tenant_id)]
            to = [a for m in group for a in m.to]
            body = self._message(group[0], preserve_recipients=False, to=to)
            correlation_id = new_id()
            response = self.execute(
                "send_email_bulk",
                lambda creds: self._request(body, group[0], creds),
                lambda r: _results(self.slug, r, to),
                tenant_id=tenant_id,
                correlation_id=correlation_id,
            )
            by_address = {r.recipient.lower(): r for r in response.value.recipients}
            return [
                SendResult(
                    self.slug,
                    by_address[m.to[0].lower()].message_id,
                    tuple(by_address[a.lower()] for a in m.to),
                    correlation_id=correlation_id,
                )
                for m in group
            ]

        return self.send_batches(messages, self._groups(messages), send_group, concurrency)

    def _groups(self, messages: Sequence[EmailMessage]) -> list[list[int]]:
        groups: dict[Any, list[list[int]]] = {}
        seen: dict[int, set[str]] = {}
        order: list[list[int]] = []
        for i, m in enumerate(messages):
            try:
                self.precheck(m)
            except ConnectorError:
                order.append([i])  # send() reports it in its own slot
                continue
            if m.cc or m.bcc:
                order.append([i])
                continue
            key = _content_key(m)
            addresses = {a.lower() for a in m.to}
            target = None
            for group in groups.get(key, []):
                if not addresses & seen[id(group)] and len(seen[id(group)]) + len(addresses) <= MAX_RECIPIENTS_PER_CALL:
                    target = group
                    break
            if target is None:
                target = []
                groups.setdefault(key, []).append(target)
                seen[id(target)] = set()
                order.append(target)
            target.append(i)
            seen[id(target)] |= addresses
        return order


def _content_key(m: EmailMessage) -> tuple[Any, ...]:
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
    )


def _results(vendor: str, response: httpx.Response, recipients: Sequence[str]) -> SendResult:
    """One RecipientResult per address we asked for; an address Mandrill did not answer for is a failure."""
    items = response.json()
    answered: dict[str, dict[str, Any]] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and item.get("email"):
                answered.setdefault(str(item["email"]).lower(), dict(item))
    results = []
    for address in recipients:
        item = answered.get(address.lower())
        if item is None:
            results.append(RecipientResult(address, DeliveryStatus.FAILED, None, "no status returned by the vendor"))
            continue
        status = STATUSES.get(str(item.get("status")), DeliveryStatus.FAILED)
        reason = item.get("reject_reason") or item.get("queued_reason")
        results.append(RecipientResult(address, status, item.get("_id"), str(reason) if reason else None))
    ids = [r.message_id for r in results if r.message_id]
    return SendResult(vendor, ids[0] if ids else None, tuple(results))


VENDOR = Vendor(
    "mailchimp",
    "Mailchimp Transactional (Mandrill) messages/send",
    {"email": MailchimpEmailAdapter},
    MailchimpOptions,
    (API_KEY,),
)
