"""Mailchimp Transactional (Mandrill) ``messages/send``.

The API key travels in the JSON body as ``key`` (there is no header auth), so
the log relies on the redactor's ``key`` field and on ``Call.secrets``.  The
official SDK calls ``/api/1.3/...send.json`` while the OpenAPI document serves
``/api/1.4/...send``: ``api_version`` picks one ("1.3" or "1.4", or "1.4.json" to
keep the suffix), so either can be followed.  ``base_url`` is the host root.

Mandrill answers HTTP 200 with one status per recipient, *including* rejected
and invalid ones: those become failures for those recipients, never a success.
A stored template goes through ``messages/send-template`` (``template_name``,
the merge data as ``global_merge_vars``); ``send_at`` schedules (a paid
account feature: recipients come back ``scheduled``).
Errors are branched on the body's ``name`` (an ``Invalid_Key`` may come back
with 401 or with 500), then on the status code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Hashable, Mapping, Sequence

import httpx

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, SCHEDULING, TEMPLATE
from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.email.common import (
    HttpEmailAdapter,
    VendorRequest,
    attachment_summary,
    b64,
    inline_values,
    utc,
    with_merge_tags,
)
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import (
    AuthenticationError,
    ConnectorError,
    RateLimitedError,
    ValidationError,
    VendorRejectedError,
)
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
_MERGE_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")


@dataclass(frozen=True)
class MailchimpOptions(VendorSettings):
    api_version: str | None = None  # "1.3" (the SDK's paths, default), "1.4" (the OpenAPI paths) or "1.4.json"
    merge_language: str | None = (
        None  # templates' merge tags: "mailchimp" (*|NAME|*, Mandrill's default) or "handlebars"
    )


class MailchimpEmailAdapter(HttpEmailAdapter[MailchimpOptions]):
    capabilities = ALL_EMAIL_FEATURES | {TEMPLATE, SCHEDULING}
    batch_limit = MAX_RECIPIENTS_PER_CALL
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
        """``messages/send``, or ``messages/send-template`` for a stored template; ``send_at`` is UTC text."""
        body: dict[str, Any] = {"message": body_message, "async": False}
        if sample.template_id:
            body.update(template_name=sample.template_id, template_content=[])
        if sample.send_at is not None:
            body["send_at"] = utc(sample.send_at).strftime("%Y-%m-%d %H:%M:%S")
        log = {
            **body,
            "message": {**body_message, "attachments": attachment_summary(sample.attachments)}
            if sample.attachments
            else body_message,
        }
        method = "messages/send-template" if sample.template_id else "messages/send"
        return VendorRequest("POST", self.endpoint(method), json={"key": creds.data["api_key"], **body}, log=log)

    def _message(
        self, message: EmailMessage, *, preserve_recipients: bool, to: Sequence[str] | None = None
    ) -> dict[str, Any]:
        from_email, from_name = self.sender(message)
        recipients = [{"email": a, "type": "to"} for a in (to if to is not None else message.to)]
        recipients += [{"email": a, "type": "cc"} for a in message.cc] + [
            {"email": a, "type": "bcc"} for a in message.bcc
        ]
        body: dict[str, Any] = {"from_email": from_email, "to": recipients, "preserve_recipients": preserve_recipients}
        if message.subject:  # a template may bring its own
            body["subject"] = message.subject
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
        if message.template_id:
            body["global_merge_vars"] = [{"name": k, "content": v} for k, v in message.merge_data.items()]
            if self.config.merge_language:
                body["merge_language"] = self.config.merge_language
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

    # -- bulk: same-content messages go out as one call, a private copy per recipient --------
    def batch_key(self, message: EmailMessage) -> Hashable | None:
        """Merge var names are letters, digits and underscores: a placeholder with any other character goes alone."""
        key = super().batch_key(message)
        return None if key is None or any(not _MERGE_NAME.match(n) for n in message.placeholders()) else key

    def build_batch(self, messages: Sequence[EmailMessage], creds: Credentials) -> VendorRequest:
        """``preserve_recipients: false`` and ``merge_vars`` per recipient: the template's data, or our
        ``{{name}}`` written as ``*|NAME|*`` merge tags with their values."""
        first = messages[0]
        sample = first if first.template_id else with_merge_tags(first, lambda name: f"*|{name.upper()}|*")
        body = self._message(sample, preserve_recipients=False, to=[m.to[0] for m in messages])
        body.pop("global_merge_vars", None)
        if not first.template_id:
            body["merge_language"] = "mailchimp"
        body["merge_vars"] = [
            {
                "rcpt": m.to[0],
                "vars": [
                    {"name": k, "content": v}
                    for k, v in (m.merge_data if m.template_id else inline_values(m) or {}).items()
                ],
            }
            for m in messages
        ]
        return self._request(body, first, creds)

    def parse_batch(self, response: httpx.Response, messages: Sequence[EmailMessage]) -> list[SendResult]:
        by_address = {
            r.recipient.lower(): r for r in _results(self.slug, response, [m.to[0] for m in messages]).recipients
        }
        return [
            SendResult(self.slug, by_address[m.to[0].lower()].message_id, (by_address[m.to[0].lower()],))
            for m in messages
        ]


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
    env={"api_key": "MAILCHIMP_API_KEY"},
)
