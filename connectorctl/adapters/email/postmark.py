"""Postmark ``/email`` and ``/email/batch`` (up to 500 messages per call), with templates too.

Auth is the server token in ``X-Postmark-Server-Token``; bodies are PascalCase
JSON.  A batch comes back HTTP 200 even when some of its items failed, so each
item's ``ErrorCode`` decides that message's recipients.  A 422 is branched on
its ``ErrorCode``: 406 (inactive recipient) is a per-recipient rejection, not a
request error.  Postmark carries one ``Tag`` per message, so a message with
several tags is declared unsupported (and skipped by failover) rather than
losing tags.  A stored template goes to ``/email/withTemplate`` (``TemplateId``
when the id is numeric, else ``TemplateAlias``, with ``TemplateModel``).
Postmark cannot schedule: a message with ``send_at`` is unsupported here.
"""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Hashable, Mapping, Sequence

import httpx

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, MESSAGE_KEY, TEMPLATE, HasFeatures, SentMatch
from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.email.common import (
    HttpEmailAdapter,
    VendorRequest,
    all_with,
    attachment_summary,
    b64,
    inline_values,
)
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import AuthenticationError, ConnectorError, ValidationError, VendorRejectedError
from connectorctl.settings import VendorSettings

BATCH_LIMIT = 500
INACTIVE_RECIPIENT = 406
ERROR_CODES: Mapping[int, type[ConnectorError]] = {
    10: AuthenticationError,  # bad or missing server token
    300: ValidationError,  # invalid email request
    400: ValidationError,  # sender signature not found
    401: ValidationError,  # sender signature not confirmed
    405: VendorRejectedError,  # not allowed to send (out of credits)
    410: ValidationError,  # too many batch messages
    412: VendorRejectedError,  # account pending
    413: VendorRejectedError,  # account may not send
    1101: ValidationError,  # template not found
}
STAT_FIELDS = (
    "Sent",
    "Bounced",
    "SMTPApiErrors",
    "BounceRate",
    "SpamComplaints",
    "SpamComplaintsRate",
    "Opens",
    "UniqueOpens",
    "TotalClicks",
)


@dataclass(frozen=True)
class PostmarkOptions(VendorSettings):
    message_stream: str | None = None  # null = "outbound" (transactional); a broadcast stream's id for bulk mail


class PostmarkEmailAdapter(HttpEmailAdapter[PostmarkOptions]):
    capabilities = ALL_EMAIL_FEATURES | {TEMPLATE}  # no scheduled sending at Postmark
    default_base_url = "https://api.postmarkapp.com"

    def unsupported(self, message: HasFeatures) -> frozenset[str]:
        missing = super().unsupported(message)
        if isinstance(message, EmailMessage) and len(message.tags) > 1:
            missing |= {"multiple_tags"}
        return missing

    def headers(self, creds: Credentials) -> dict[str, str]:
        return {"X-Postmark-Server-Token": creds.data["api_key"], "Accept": "application/json"}

    def body(self, message: EmailMessage, key: str | None = None) -> dict[str, Any]:
        from_email, from_name = self.sender(message)
        body: dict[str, Any] = {
            "From": email.utils.formataddr((from_name, from_email)) if from_name else from_email,
            "To": ", ".join(message.to),
            "MessageStream": self.config.message_stream or "outbound",
        }
        if message.template_id:  # the template brings subject and bodies
            kind = "TemplateId" if message.template_id.isdigit() else "TemplateAlias"
            body.update(
                {
                    kind: int(message.template_id) if kind == "TemplateId" else message.template_id,
                    "TemplateModel": dict(message.merge_data),
                }
            )
        else:
            body["Subject"] = message.subject
        optional = {
            "Cc": ", ".join(message.cc),
            "Bcc": ", ".join(message.bcc),
            "ReplyTo": message.reply_to,
            "TextBody": None if message.template_id else message.text,
            "HtmlBody": None if message.template_id else message.html,
            "Tag": message.tags[0] if message.tags else None,
        }
        body.update({k: v for k, v in optional.items() if v})
        if message.headers:
            body["Headers"] = [{"Name": k, "Value": v} for k, v in message.headers.items()]
        metadata = {**message.metadata, **({MESSAGE_KEY: key} if key else {})}
        if metadata:
            body["Metadata"] = metadata
        if message.attachments:
            body["Attachments"] = [
                {"Name": a.filename, "Content": b64(a.content), "ContentType": a.content_type}
                for a in message.attachments
            ]
        return body

    @staticmethod
    def loggable(body: dict[str, Any], message: EmailMessage) -> dict[str, Any]:
        return {**body, "Attachments": attachment_summary(message.attachments)} if message.attachments else body

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        body = self.body(message, correlation_id)
        path = "/email/withTemplate" if message.template_id else "/email"
        return VendorRequest("POST", path, json=body, headers=self.headers(creds), log=self.loggable(body, message))

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        return self.item_result(response.json(), message)

    def item_result(self, item: Any, message: EmailMessage) -> SendResult:
        """One answer object (single send or batch item) -> the truth for that message's recipients."""
        if not isinstance(item, Mapping):
            return all_with(self.slug, message, DeliveryStatus.FAILED, None, "no result returned by the vendor")
        code = int(item.get("ErrorCode") or 0)
        message_id = item.get("MessageID")
        if code == 0:
            return all_with(self.slug, message, DeliveryStatus.ACCEPTED, message_id)
        text = f"ErrorCode {code}: {item.get('Message')}"
        if code == INACTIVE_RECIPIENT:
            return _inactive(self.slug, message, text)
        return all_with(
            self.slug, message, DeliveryStatus.INVALID if code == 300 else DeliveryStatus.FAILED, message_id, text
        )

    # -- errors -------------------------------------------------------------------
    def error_class(self, response: httpx.Response, body: Any) -> type[ConnectorError] | None:
        if response.status_code == 422 and isinstance(body, Mapping):
            return ERROR_CODES.get(int(body.get("ErrorCode") or 0))
        return None

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping) and "ErrorCode" in body:
            return f"ErrorCode {body.get('ErrorCode')}: {body.get('Message')}"
        return super().error_message(response, body)

    def rejection_result(self, exc: ConnectorError, message: EmailMessage) -> SendResult | None:
        body = exc.response_data
        if exc.http_status == 422 and isinstance(body, Mapping) and body.get("ErrorCode") == INACTIVE_RECIPIENT:
            return _inactive(self.slug, message, f"ErrorCode {INACTIVE_RECIPIENT}: {body.get('Message')}")
        return None

    # -- batch ----------------------------------------------------------------------
    batch_limit = BATCH_LIMIT

    def batch_key(self, message: EmailMessage) -> Hashable | None:
        """Postmark batches whole messages, so any two travel together (template sends on their own endpoint)."""
        if not message.template_id and inline_values(message) is None:
            return None  # a placeholder without a value: it goes alone and fails alone
        return bool(message.template_id)

    def build_batch(self, messages: Sequence[EmailMessage], creds: Credentials) -> VendorRequest:
        """``/email/batch`` (a JSON array) or ``/email/batchWithTemplates`` (``{"Messages": [...]}``), filled here."""
        bodies = [self.body(m.filled()) for m in messages]
        log = [self.loggable(b, m) for b, m in zip(bodies, messages, strict=True)]
        if messages[0].template_id:
            return VendorRequest(
                "POST",
                "/email/batchWithTemplates",
                json={"Messages": bodies},
                headers=self.headers(creds),
                log={"Messages": log},
            )
        return VendorRequest("POST", "/email/batch", json=bodies, headers=self.headers(creds), log=log)

    def parse_batch(self, response: httpx.Response, messages: Sequence[EmailMessage]) -> list[SendResult]:
        """One answer per message, in request order; an item with ``ErrorCode != 0`` fails only its message."""
        items = response.json()
        items = items if isinstance(items, list) else []
        return [self.item_result(items[n] if n < len(items) else None, m) for n, m in enumerate(messages)]

    # -- reads ----------------------------------------------------------------------
    def build_lookup(self, message: EmailMessage, key: str, since: float, creds: Credentials) -> VendorRequest:
        """Outbound message search filtered by our key in the message's Metadata and the recipient (the copies
        of one batch share a key)."""
        params = {"count": 50, "offset": 0, "recipient": message.to[0], f"metadata_{MESSAGE_KEY}": key}
        return VendorRequest("GET", "/messages/outbound", params=params, headers=self.headers(creds))

    def parse_lookup(self, response: httpx.Response, message: EmailMessage, key: str, since: float) -> SentMatch | None:
        for found in (response.json() or {}).get("Messages") or []:
            if (found.get("Metadata") or {}).get(MESSAGE_KEY) == key:
                return SentMatch(found.get("MessageID"), found.get("Status"))
        return None

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", "/server", headers=self.headers(creds))

    def build_statistics(self, start: datetime, end: datetime, creds: Credentials) -> VendorRequest:
        params = {"fromdate": start.date().isoformat(), "todate": end.date().isoformat()}
        if self.config.message_stream:
            params["messagestream"] = self.config.message_stream
        return VendorRequest("GET", "/stats/outbound", params=params, headers=self.headers(creds))

    def parse_statistics(self, response: httpx.Response) -> Mapping[str, Any]:
        body = response.json()
        return {name: body[name] for name in STAT_FIELDS if name in body}


_ADDRESS = re.compile(r"[^\s,;:<>()\[\]\"']+@[^\s,;:<>()\[\]\"']+")


def _inactive(vendor: str, message: EmailMessage, reason: str) -> SendResult:
    """Postmark names the inactive addresses in its message; those are rejected, the rest were not sent.

    Whole addresses are compared: ``bob@x.com`` named inactive says nothing about ``jimbob@x.com``.
    """
    listed = {a.rstrip(".").lower() for a in _ADDRESS.findall(reason)}
    named = {a for a in message.recipients if a.lower() in listed}
    results = tuple(
        RecipientResult(a, DeliveryStatus.REJECTED, None, reason)
        if (a in named or not named)
        else RecipientResult(a, DeliveryStatus.FAILED, None, "not sent: the message also named inactive recipients")
        for a in message.recipients
    )
    return SendResult(vendor, None, results)


VENDOR = Vendor(
    "postmark",
    "Postmark /email and /email/batch",
    {"email": PostmarkEmailAdapter},
    PostmarkOptions,
    (API_KEY,),
    env={"api_key": "POSTMARK_SERVER_TOKEN"},
)
