"""What applications send and what they get back, independent of any vendor."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, Mapping

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes = field(repr=False)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class EmailMessage:
    to: tuple[str, ...]
    subject: str
    text: str | None = None
    html: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    idempotency_key: str | None = None
    template_id: str | None = (
        None  # a template kept at the vendor: SendGrid id, Postmark id or alias, Mandrill/Mailgun name
    )
    merge_data: Mapping[str, Any] = field(
        default_factory=dict
    )  # the template's data, or the values of {{name}} in subject and body
    send_at: datetime | None = None  # the vendor holds the message until then (aware; naive means UTC)

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", tuple(self.to))
        object.__setattr__(self, "cc", tuple(self.cc))
        object.__setattr__(self, "bcc", tuple(self.bcc))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "attachments", tuple(self.attachments))
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "merge_data", MappingProxyType(dict(self.merge_data)))

    @property
    def recipients(self) -> tuple[str, ...]:
        return self.to + self.cc + self.bcc

    def filled(self) -> "EmailMessage":
        """Without a vendor template, ``merge_data`` fills the ``{{name}}`` placeholders before a vendor sees them."""
        if self.template_id or not self.merge_data:
            return self
        values = self.merge_values()
        return replace(
            self,
            subject=fill(self.subject, values) or "",
            text=fill(self.text, values),
            html=fill(self.html, values),
            merge_data={},
        )

    def merge_values(self) -> dict[str, str]:
        """``merge_data`` as placeholder values: names lower case, values text."""
        return {str(k).lower(): "" if v is None else str(v) for k, v in self.merge_data.items()}

    def placeholders(self) -> set[str]:
        """The ``{{name}}`` names used in subject and bodies, lower case."""
        return {
            m.group(1).lower()
            for text in (self.subject, self.text, self.html)
            if text
            for m in PLACEHOLDER.finditer(text)
        }

    def features(self) -> frozenset[str]:
        """Optional features this message relies on, for vendor capability checks."""
        used = {
            "cc": bool(self.cc),
            "bcc": bool(self.bcc),
            "reply_to": bool(self.reply_to),
            "headers": bool(self.headers),
            "tags": bool(self.tags),
            "metadata": bool(self.metadata),
            "attachments": bool(self.attachments),
            "html": bool(self.html),
            "template": bool(self.template_id),
            "send_at": self.send_at is not None,
        }
        return frozenset(name for name, on in used.items() if on)


def fill(template: str | None, values: Mapping[str, str]) -> str | None:
    """``{{name}}`` -> ``values[name]`` (names are lower case); a name without a value is an input error."""
    if template is None:
        return None

    def value(match: re.Match[str]) -> str:
        name = match.group(1).lower()
        if name not in values:
            from connectorctl.errors import InvalidInputError

            raise InvalidInputError(f"no value for placeholder {match.group(0)}")
        return values[name]

    return PLACEHOLDER.sub(value, template)


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    from_number: str | None = None
    idempotency_key: str | None = None
    status_callback: str | None = None  # URL the vendor reports delivery to (else the vendor's configured one)

    def features(self) -> frozenset[str]:
        return frozenset()


class DeliveryStatus(str, enum.Enum):
    ACCEPTED = "accepted"
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    REJECTED = "rejected"
    INVALID = "invalid"
    FAILED = "failed"
    UNCERTAIN = "uncertain"  # the vendor may have taken it: check before sending again

    @property
    def ok(self) -> bool:
        return self in (DeliveryStatus.ACCEPTED, DeliveryStatus.QUEUED, DeliveryStatus.SCHEDULED)


@dataclass(frozen=True)
class RecipientResult:
    recipient: str
    status: DeliveryStatus
    message_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SendResult:
    """The truthful outcome of one send: ``ok`` only if every recipient was accepted."""

    vendor: str
    message_id: str | None
    recipients: tuple[RecipientResult, ...]
    correlation_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return bool(self.recipients) and all(r.status.ok for r in self.recipients)

    @property
    def failed(self) -> tuple[RecipientResult, ...]:
        return tuple(r for r in self.recipients if not r.status.ok)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "vendor": self.vendor,
            "message_id": self.message_id,
            "correlation_id": self.correlation_id,
            "recipients": [
                {"recipient": r.recipient, "status": r.status.value, "message_id": r.message_id, "reason": r.reason}
                for r in self.recipients
            ],
        }
