"""Mailgun webhooks: one event per delivery, under ``event-data`` (the signature sits beside it).

``event-data.id`` is unique per event (our dedupe key); the message is
``message.headers.message-id``, which is the ``id`` our send got back without
its angle brackets.  ``failed`` is a hard bounce when ``severity`` is
``permanent`` and a soft one (Mailgun retries) when ``temporary``; a failure
whose ``reason`` is ``suppress-…`` means Mailgun did not even try (the address
is on its own suppression list): rejected.
"""

from __future__ import annotations

import json
from typing import Any

from connectorctl.delivery.events import BounceType, DeliveryEvent, EventType, epoch, mapping, recipient, text

VENDOR = "mailgun"
TYPES = {
    "accepted": EventType.QUEUED,
    "delivered": EventType.DELIVERED,
    "failed": EventType.BOUNCED,
    "rejected": EventType.REJECTED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "complained": EventType.COMPLAINED,
}


def message_id(value: Any) -> str | None:
    found = text(value)
    return found.strip("<>") if found else None


def parse(body: bytes, received_at: float) -> list[DeliveryEvent]:
    data = json.loads(body)
    item = data.get("event-data") if isinstance(data, dict) else None
    if not isinstance(item, dict):
        return []
    name = str(item.get("event") or "")
    kind = TYPES.get(name, EventType.UNKNOWN)
    status = mapping(item.get("delivery-status"))
    reason = text(status.get("message")) or text(status.get("description"))
    bounce = None
    if kind is EventType.BOUNCED:
        cause = str(item.get("reason") or "")
        reason = reason or text(cause)
        if cause.startswith("suppress-"):
            kind = EventType.REJECTED
        else:
            bounce = BounceType.HARD if item.get("severity") == "permanent" else BounceType.SOFT
    msg_id = message_id(mapping(mapping(item.get("message")).get("headers")).get("message-id"))
    return [
        DeliveryEvent(
            VENDOR,
            kind,
            epoch(item.get("timestamp"), received_at),
            msg_id,
            recipient(item.get("recipient")),
            name,
            reason,
            bounce,
            text(item.get("id")) or "",
            raw=item,
        )
    ]
