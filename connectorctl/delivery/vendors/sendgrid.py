"""SendGrid Event Webhook: a JSON array of events, one per recipient and step.

Each event has ``event``, ``email``, ``timestamp`` (unix), ``sg_event_id``
(unique: our dedupe key) and ``sg_message_id``, which is the ``X-Message-Id``
our send got back followed by ``.filter…``/``.recvd…`` routing parts.  A
``bounce`` of ``type: blocked`` is a soft bounce (the receiving server refused
for now); ``dropped`` means SendGrid itself would not send (a suppressed or
invalid address).
"""

from __future__ import annotations

import json
import re
from typing import Any

from connectorctl.delivery.events import BounceType, DeliveryEvent, EventType, epoch, recipient, text

VENDOR = "sendgrid"
TYPES = {
    "processed": EventType.QUEUED,
    "dropped": EventType.REJECTED,
    "delivered": EventType.DELIVERED,
    "deferred": EventType.DEFERRED,
    "bounce": EventType.BOUNCED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
}
_ROUTING = re.compile(r"\.(?:filter|recvd|geopod)")


def message_id(sg_message_id: Any) -> str | None:
    value = text(sg_message_id)
    return _ROUTING.split(value, maxsplit=1)[0] if value else None


def parse(body: bytes, received_at: float) -> list[DeliveryEvent]:
    data = json.loads(body)
    return [
        _event(item, received_at) for item in (data if isinstance(data, list) else [data]) if isinstance(item, dict)
    ]


def _event(item: dict[str, Any], received_at: float) -> DeliveryEvent:
    name = str(item.get("event") or "")
    kind = TYPES.get(name, EventType.UNKNOWN)
    bounce = None
    if kind is EventType.BOUNCED:
        bounce = BounceType.SOFT if item.get("type") == "blocked" else BounceType.HARD
    return DeliveryEvent(
        VENDOR,
        kind,
        epoch(item.get("timestamp"), received_at),
        message_id(item.get("sg_message_id")),
        recipient(item.get("email")),
        name,
        text(item.get("reason") or item.get("response")),
        bounce,
        text(item.get("sg_event_id")) or "",
        raw=item,
    )
