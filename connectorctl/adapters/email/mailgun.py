"""Mailgun ``POST /v3/{domain}/messages`` (US ``api.mailgun.net`` or EU ``api.eu.mailgun.net``).

HTTP Basic with the username ``api`` and the API key as password.  Without
attachments the form goes urlencoded (as the official SDK does); with
attachments it goes multipart/form-data (as the API spec says), one
``attachment`` part per file.  Custom headers travel as ``h:``, tags as
``o:tag`` (Mailgun keeps at most three), metadata as ``v:`` variables.  A
stored template is ``template`` with its data as ``h:X-Mailgun-Variables``
(JSON); ``send_at`` is ``o:deliverytime`` (RFC 2822, at most 3 days ahead).
Bulk sends use batch sending: up to 1000 recipients per request with
``recipient-variables``, so each gets a private copy with its own values.
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Hashable, Mapping, Sequence

import httpx

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, MESSAGE_KEY, SCHEDULING, TEMPLATE, HasFeatures, SentMatch
from connectorctl.adapters.declaration import API_KEY, Vendor
from connectorctl.adapters.email.common import (
    HttpEmailAdapter,
    RegionalOptions,
    VendorRequest,
    all_with,
    attachment_summary,
    content_key,
    inline_values,
    utc,
    with_merge_tags,
)
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError

MAX_TAGS = 3
REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


@dataclass(frozen=True)
class MailgunOptions(RegionalOptions):
    regions = REGIONS
    domain: str | None = None  # the sending domain (required to send), e.g. mg.example.com


class MailgunEmailAdapter(HttpEmailAdapter[MailgunOptions]):
    capabilities = ALL_EMAIL_FEATURES | {TEMPLATE, SCHEDULING}
    batch_limit = 1000  # recipients per batch send

    def unsupported(self, message: HasFeatures) -> frozenset[str]:
        missing = super().unsupported(message)
        if isinstance(message, EmailMessage) and len(message.tags) > MAX_TAGS:
            missing |= {"more_than_3_tags"}
        return missing

    @property
    def domain(self) -> str:
        if not self.config.domain:
            raise ConfigurationError("vendors.mailgun.domain: the sending domain is required (e.g. mg.example.com)")
        return self.config.domain

    def auth(self, creds: Credentials) -> tuple[str, str]:
        return ("api", creds.data["api_key"])

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        from_email, from_name = self.sender(message)
        fields: dict[str, Any] = {
            "from": email.utils.formataddr((from_name, from_email)) if from_name else from_email,
            "to": ", ".join(message.to),
        }
        optional = {
            "subject": message.subject,
            "cc": ", ".join(message.cc),
            "bcc": ", ".join(message.bcc),
            "text": message.text,
            "html": message.html,
            "h:Reply-To": message.reply_to,
            "template": message.template_id,
            "o:deliverytime": _rfc2822(message.send_at) if message.send_at is not None else None,
        }
        fields.update({k: v for k, v in optional.items() if v})
        fields.update({f"h:{name}": value for name, value in message.headers.items()})
        if message.tags:
            fields["o:tag"] = list(message.tags)
        fields.update({f"v:{key}": value for key, value in message.metadata.items()})
        if correlation_id:
            fields[f"v:{MESSAGE_KEY}"] = correlation_id
        if message.template_id:
            fields["h:X-Mailgun-Variables"] = json.dumps(dict(message.merge_data))
        files = [("attachment", (a.filename, a.content, a.content_type)) for a in message.attachments] or None
        log = {**fields, "attachment": attachment_summary(message.attachments)} if files else fields
        return VendorRequest(
            "POST", f"/v3/{self.domain}/messages", data=fields, files=files, auth=self.auth(creds), log=log
        )

    def batch_key(self, message: EmailMessage) -> Hashable | None:
        """A stored template reads per-recipient data only as ``recipient.<key>``: template sends batch only when
        they share their data."""
        key = super().batch_key(message)
        if key is None or not message.template_id:
            return key
        return (content_key(message), json.dumps(dict(message.merge_data), sort_keys=True, default=str))

    def build_batch(self, messages: Sequence[EmailMessage], creds: Credentials) -> VendorRequest:
        """One ``to`` per message and ``recipient-variables`` (which make Mailgun send each recipient its own copy);
        our ``{{name}}`` become ``%recipient.name%``."""
        first = messages[0]
        request = self.build_send(
            first if first.template_id else with_merge_tags(first, lambda name: f"%recipient.{name}%"), creds, None
        )
        variables = {m.to[0]: dict(m.merge_data) if m.template_id else inline_values(m) or {} for m in messages}
        extra = {"to": [m.to[0] for m in messages], "recipient-variables": json.dumps(variables)}
        return replace(request, data={**request.data, **extra}, log={**request.log, **extra})

    def parse_batch(self, response: httpx.Response, messages: Sequence[EmailMessage]) -> list[SendResult]:
        return [self.parse_send(response, m) for m in messages]

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        body = response.json()
        message_id = body.get("id") if isinstance(body, Mapping) else None
        if not message_id:  # a 200 means Mailgun took the request; the message may well be queued
            return all_with(
                self.slug,
                message,
                DeliveryStatus.UNCERTAIN,
                None,
                "HTTP 200 without a message id: the message may be queued; check Mailgun's logs before resending",
            )
        return all_with(
            self.slug, message, DeliveryStatus.SCHEDULED if message.send_at else DeliveryStatus.QUEUED, message_id
        )

    def build_lookup(self, message: EmailMessage, key: str, since: float, creds: Credentials) -> VendorRequest:
        """The ``accepted`` events for the first recipient since ``since``; our key is among each event's
        user-variables."""
        params = {
            "event": "accepted",
            "recipient": message.to[0],
            "begin": str(int(since)),
            "ascending": "yes",
            "limit": 300,
        }
        return VendorRequest("GET", f"/v3/{self.domain}/events", params=params, auth=self.auth(creds))

    def parse_lookup(self, response: httpx.Response, message: EmailMessage, key: str, since: float) -> SentMatch | None:
        for event in (response.json() or {}).get("items") or []:
            if (event.get("user-variables") or {}).get(MESSAGE_KEY) == key:
                message_id = ((event.get("message") or {}).get("headers") or {}).get("message-id")
                return SentMatch(f"<{message_id.strip('<>')}>" if message_id else None, event.get("event"))
        return None

    def build_verify(self, creds: Credentials) -> VendorRequest:
        return VendorRequest("GET", f"/v3/domains/{self.domain}", auth=self.auth(creds))

    def build_statistics(self, start: datetime, end: datetime, creds: Credentials) -> VendorRequest:
        params = [("event", e) for e in ("accepted", "delivered", "failed")]
        params += [("start", _rfc2822(start)), ("end", _rfc2822(end)), ("resolution", "day")]
        return VendorRequest("GET", f"/v3/{self.domain}/stats/total", params=params, auth=self.auth(creds))

    def parse_statistics(self, response: httpx.Response) -> Mapping[str, Any]:
        """Sum the per-period ``total`` counters of accepted, delivered and failed events."""
        totals = {"accepted": 0, "delivered": 0, "failed_permanent": 0, "failed_temporary": 0}
        for period in (response.json() or {}).get("stats", []):
            totals["accepted"] += int((period.get("accepted") or {}).get("total", 0))
            totals["delivered"] += int((period.get("delivered") or {}).get("total", 0))
            failed = period.get("failed") or {}
            totals["failed_permanent"] += int((failed.get("permanent") or {}).get("total", 0))
            totals["failed_temporary"] += int((failed.get("temporary") or {}).get("total", 0))
        return totals


def _rfc2822(value: datetime) -> str:
    """Mailgun takes RFC 2822 dates (stats, ``o:deliverytime``); a naive datetime is taken as UTC."""
    return email.utils.format_datetime(utc(value), usegmt=True)


VENDOR = Vendor(
    "mailgun",
    "Mailgun messages API (US or EU region)",
    {"email": MailgunEmailAdapter},
    MailgunOptions,
    (API_KEY,),
    env={"api_key": "MAILGUN_API_KEY"},
)
