"""SendGrid v3 Mail Send: our message -> one personalization, 202 + ``X-Message-Id`` back.

``region: eu`` selects ``api.eu.sendgrid.com`` (EU regional subusers).  SendGrid
answers per request, not per recipient: a 202 means every recipient was
accepted for delivery, so each gets the request's message id.  ``sandbox: true``
turns on sandbox mode, which validates without delivering (HTTP 200).
A dynamic template (``template_id``, ``d-…``) takes the message's merge data as
``dynamic_template_data`` and supplies the subject and body; ``send_at`` is a
unix time at most 72 hours ahead (SendGrid refuses later ones with a 400).

Bulk sends fold same-content messages into the personalizations of one
request (up to 1000): each recipient's template data, or its values for our
``{{name}}`` placeholders as ``substitutions``.  The request's message id is
every recipient's; a batch refused with a 400 was taken by no one, so its
messages are then sent one by one and only the bad one fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping, Sequence

import httpx

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, MESSAGE_KEY, SCHEDULING, TEMPLATE, HasFeatures, SentMatch
from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.email.common import (
    HttpEmailAdapter,
    RegionalOptions,
    VendorRequest,
    all_with,
    attachment_summary,
    b64,
    inline_values,
    utc,
    with_merge_tags,
)
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, SendResult
from connectorctl.domain.values import Credentials

SANDBOX_REASON = "sandbox mode: validated, not delivered"
MAX_CATEGORIES = 10  # tags travel as categories; SendGrid takes at most 10 per message
REGIONS = {"us": "https://api.sendgrid.com", "global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}


@dataclass(frozen=True)
class SendGridOptions(RegionalOptions):
    regions = REGIONS
    sandbox: bool = False  # mail_settings.sandbox_mode: validated by SendGrid, not delivered


class SendGridEmailAdapter(HttpEmailAdapter[SendGridOptions]):
    capabilities = ALL_EMAIL_FEATURES | {TEMPLATE, SCHEDULING}
    batch_limit = 1000  # personalizations per request

    def unsupported(self, message: HasFeatures) -> frozenset[str]:
        missing = super().unsupported(message)
        if isinstance(message, EmailMessage) and len(message.tags) > MAX_CATEGORIES:
            missing |= {"more_than_10_tags"}
        return missing

    def headers(self, creds: Credentials) -> dict[str, str]:
        return {"Authorization": f"Bearer {creds.data['api_key']}", "Accept": "application/json"}

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        from_email, from_name = self.sender(message)
        personalization: dict[str, Any] = {"to": _addresses(message.to)}
        if message.cc:
            personalization["cc"] = _addresses(message.cc)
        if message.bcc:
            personalization["bcc"] = _addresses(message.bcc)
        if message.template_id:
            personalization["dynamic_template_data"] = dict(message.merge_data)
        body: dict[str, Any] = {
            "personalizations": [personalization],
            "from": {"email": from_email, **({"name": from_name} if from_name else {})},
        }
        if message.subject:  # a dynamic template brings its own subject
            body["subject"] = message.subject
        content = [c for c in (_content("text/plain", message.text), _content("text/html", message.html)) if c]
        if content:
            body["content"] = content
        if message.template_id:
            body["template_id"] = message.template_id
        if message.send_at is not None:
            body["send_at"] = int(utc(message.send_at).timestamp())
        if message.reply_to:
            body["reply_to"] = {"email": message.reply_to}
        if message.headers:
            body["headers"] = dict(message.headers)
        if message.tags:
            body["categories"] = list(message.tags)
        custom_args = {**message.metadata, **({MESSAGE_KEY: correlation_id} if correlation_id else {})}
        if custom_args:
            body["custom_args"] = custom_args
        if self.config.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        log = dict(body)
        if message.attachments:
            body["attachments"] = [
                {"content": b64(a.content), "filename": a.filename, "type": a.content_type, "disposition": "attachment"}
                for a in message.attachments
            ]
            log["attachments"] = attachment_summary(message.attachments)
        return VendorRequest("POST", "/v3/mail/send", json=body, headers=self.headers(creds), log=log)

    def build_batch(self, messages: Sequence[EmailMessage], creds: Credentials) -> VendorRequest:
        """One request, a personalization per message: its template data, or ``substitutions`` for our ``{{name}}``."""
        first = messages[0]
        request = self.build_send(first if first.template_id else with_merge_tags(first, _tag), creds, None)
        personalizations = []
        for m in messages:
            personalization: dict[str, Any] = {"to": _addresses(m.to)}
            if m.template_id:
                personalization["dynamic_template_data"] = dict(m.merge_data)
            else:
                personalization["substitutions"] = {
                    _tag(name): value for name, value in (inline_values(m) or {}).items()
                }
            personalizations.append(personalization)
        return replace(
            request,
            json={**request.json, "personalizations": personalizations},
            log={**request.log, "personalizations": personalizations},
        )

    def parse_batch(self, response: httpx.Response, messages: Sequence[EmailMessage]) -> list[SendResult]:
        return [self.parse_send(response, m) for m in messages]

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        message_id = response.headers.get("X-Message-Id")
        if response.status_code == 200 and self.config.sandbox:
            return all_with(self.slug, message, DeliveryStatus.ACCEPTED, message_id, SANDBOX_REASON)
        return all_with(
            self.slug, message, DeliveryStatus.SCHEDULED if message.send_at else DeliveryStatus.ACCEPTED, message_id
        )

    def build_lookup(self, message: EmailMessage, key: str, since: float, creds: Credentials) -> VendorRequest:
        """Email Activity (a paid SendGrid add-on) filtered by our key among the message's custom args and the
        recipient (the personalizations of one batch share a key)."""
        return VendorRequest(
            "GET",
            "/v3/messages",
            params={"limit": 10, "query": f'unique_args[\'{MESSAGE_KEY}\']="{key}" AND to_email="{message.to[0]}"'},
            headers=self.headers(creds),
        )

    def parse_lookup(self, response: httpx.Response, message: EmailMessage, key: str, since: float) -> SentMatch | None:
        found = (response.json() or {}).get("messages") or []
        if not found:
            return None
        msg_id = str(found[0].get("msg_id") or "")  # "<X-Message-Id>.<filter suffix>": the part a send returned
        return SentMatch(msg_id.split(".", 1)[0] or None, found[0].get("status"))

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", "/v3/scopes", headers=self.headers(creds))

    def build_statistics(self, start: datetime, end: datetime, creds: Credentials) -> VendorRequest:
        params = {"start_date": start.date().isoformat(), "end_date": end.date().isoformat(), "aggregated_by": "day"}
        return VendorRequest("GET", "/v3/stats", params=params, headers=self.headers(creds))

    def parse_statistics(self, response: httpx.Response) -> Mapping[str, Any]:
        """Sum the per-day metric blocks of ``/v3/stats`` into one set of counters."""
        totals: dict[str, int] = {}
        for day in response.json() or []:
            for block in day.get("stats", []):
                for name, value in (block.get("metrics") or {}).items():
                    if isinstance(value, (int, float)):
                        totals[name] = totals.get(name, 0) + int(value)
        return totals


def _tag(name: str) -> str:
    return "{{" + name + "}}"


def _addresses(addresses: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"email": a} for a in addresses]


def _content(kind: str, value: str | None) -> dict[str, str] | None:
    return {"type": kind, "value": value} if value else None


VENDOR = Vendor(
    "sendgrid",
    "SendGrid v3 Mail Send (US or EU region)",
    {"email": SendGridEmailAdapter},
    SendGridOptions,
    (API_KEY,),
    env={"api_key": "SENDGRID_API_KEY"},
)
