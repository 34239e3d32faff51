"""Postmark webhooks: one JSON object per event, told apart by ``RecordType``.

``Delivery``, ``Open``, ``Click`` and ``SubscriptionChange`` name the address
in ``Recipient``; ``Bounce`` and ``SpamComplaint`` in ``Email``.  Each type has
its own time field.  A bounce's ``Type`` says hard or soft; its numeric ``ID``
is unique, the other types carry no id (their content identifies them).
"""

from __future__ import annotations

import json
from typing import Any

from connectorctl.delivery.events import BounceType, DeliveryEvent, EventType, epoch, recipient, text

VENDOR = "postmark"
TIME_FIELDS = {
    "Delivery": "DeliveredAt",
    "Bounce": "BouncedAt",
    "SpamComplaint": "BouncedAt",
    "Open": "ReceivedAt",
    "Click": "ReceivedAt",
    "SubscriptionChange": "ChangedAt",
}
HARD_BOUNCES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated"})
# Bounce records whose Type is not a bounce at all
BOUNCE_TYPE_EVENTS = {"SpamComplaint": EventType.COMPLAINED, "Unsubscribe": EventType.UNSUBSCRIBED}
SUPPRESSION_REASONS = {
    "HardBounce": EventType.BOUNCED,
    "SpamComplaint": EventType.COMPLAINED,
    "ManualSuppression": EventType.UNSUBSCRIBED,
}


def parse(body: bytes, received_at: float) -> list[DeliveryEvent]:
    item = json.loads(body)
    if not isinstance(item, dict):
        return []
    record = str(item.get("RecordType") or "")
    kind, bounce = _kind(record, item)
    reason = text(item.get("Description")) or text(item.get("Details")) or text(item.get("SuppressionReason"))
    key = f"bounce:{item['ID']}" if record in ("Bounce", "SpamComplaint") and item.get("ID") is not None else ""
    return [
        DeliveryEvent(
            VENDOR,
            kind,
            epoch(item.get(TIME_FIELDS.get(record, "")), received_at),
            text(item.get("MessageID")),
            recipient(item.get("Recipient") or item.get("Email")),
            record,
            reason,
            bounce,
            key,
            raw=item,
        )
    ]


def _kind(record: str, item: dict[str, Any]) -> tuple[EventType, BounceType | None]:
    if record == "Delivery":
        return EventType.DELIVERED, None
    if record == "Open":
        return EventType.OPENED, None
    if record == "Click":
        return EventType.CLICKED, None
    if record == "SpamComplaint":
        return EventType.COMPLAINED, None
    if record == "Bounce":
        bounce_type = str(item.get("Type") or "")
        if bounce_type in BOUNCE_TYPE_EVENTS:
            return BOUNCE_TYPE_EVENTS[bounce_type], None
        return EventType.BOUNCED, BounceType.HARD if bounce_type in HARD_BOUNCES else BounceType.SOFT
    if record == "SubscriptionChange" and item.get("SuppressSending") is True:
        kind = SUPPRESSION_REASONS.get(str(item.get("SuppressionReason") or ""), EventType.UNSUBSCRIBED)
        return kind, BounceType.HARD if kind is EventType.BOUNCED else None
    return EventType.UNKNOWN, None
