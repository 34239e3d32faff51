"""One event model for every vendor's delivery reports.

A vendor module turns one verified webhook body into :class:`DeliveryEvent`
values; nothing downstream (storage, timelines, suppressions, rates) knows a
vendor's vocabulary.  ``rank`` orders the states a message can be in, so an
event that arrives late (``deferred`` after ``delivered``) is kept in the
timeline but never moves the message backwards.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectorctl.webhooks.base import fingerprint


class EventType(str, enum.Enum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    OPENED = "opened"
    CLICKED = "clicked"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    UNKNOWN = "unknown"


class BounceType(str, enum.Enum):
    HARD = "hard"
    SOFT = "soft"


# How far along a message is.  A soft bounce is a delay (the vendor retries), so it ranks with
# `deferred`; a final failure outranks `delivered` because vendors report late bounces after
# accepting at the receiving server; engagement proves delivery; a complaint or unsubscribe is
# the last word.  `unknown` never changes a message's state.
_RANK = {
    EventType.UNKNOWN: 0,
    EventType.QUEUED: 10,
    EventType.SENT: 20,
    EventType.DEFERRED: 30,
    EventType.DELIVERED: 40,
    EventType.BOUNCED: 45,
    EventType.REJECTED: 45,
    EventType.FAILED: 45,
    EventType.UNDELIVERED: 45,
    EventType.OPENED: 50,
    EventType.CLICKED: 60,
    EventType.COMPLAINED: 70,
    EventType.UNSUBSCRIBED: 70,
}
SOFT_BOUNCE_RANK = 30
# States that mean the message reached the recipient, for the delivery rate.
REACHED = ("delivered", "opened", "clicked", "complained", "unsubscribed")


@dataclass(frozen=True)
class DeliveryEvent:
    """One normalized delivery event; ``raw`` is the vendor's own record of it, kept as received."""

    vendor: str
    type: EventType
    occurred_at: float
    vendor_message_id: str | None
    recipient: str | None
    vendor_event: str
    reason: str | None = None
    bounce_type: BounceType | None = None
    event_key: str = ""
    correlation_id: str | None = None  # when the vendor echoes ours back (Vonage client-ref)
    raw: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.event_key:  # vendors without an event id: the event's own content identifies it
            object.__setattr__(self, "event_key", fingerprint(canonical(self.raw)))

    @property
    def rank(self) -> int:
        if self.type is EventType.BOUNCED and self.bounce_type is BounceType.SOFT:
            return SOFT_BOUNCE_RANK
        return _RANK[self.type]

    @property
    def suppresses(self) -> bool:
        """A hard bounce, a complaint or an unsubscribe stops later sends to the recipient."""
        if self.type is EventType.BOUNCED:
            return self.bounce_type is BounceType.HARD
        return self.type in (EventType.COMPLAINED, EventType.UNSUBSCRIBED)

    @property
    def label(self) -> str:
        return label(self.type.value, self.bounce_type.value if self.bounce_type else None)


def label(event_type: str, bounce_type: str | None) -> str:
    """``bounced (hard)``, ``delivered`` ...: how people read a type."""
    return f"{event_type} ({bounce_type})" if bounce_type else event_type


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def epoch(value: Any, default: float) -> float:
    """A vendor's timestamp (unix seconds, or ISO 8601 with or without zone) as epoch seconds."""
    if isinstance(value, bool) or value is None or value == "":
        return default
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return default
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def text(value: Any) -> str | None:
    """A non-empty string, or None."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (vendors omit optional objects)."""
    return value if isinstance(value, dict) else {}


def recipient(value: Any) -> str | None:
    """An address as we store it: email lowercased, phone number in E.164 (vendors drop the ``+``)."""
    address = text(value)
    if address is None:
        return None
    if "@" in address:
        return address.lower()
    digits = address.lstrip("+")
    return "+" + digits if digits.isdigit() else address
