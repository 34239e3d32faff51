"""Mailchimp Transactional (Mandrill) webhooks: form field ``mandrill_events``, a JSON array.

Message events carry ``event``, ``ts`` (unix), ``_id`` (the per-recipient id
our send got back) and ``msg`` (``email``, ``diag``, ``bounce_description``,
``reject``…).  Sync events (allow/deny-list changes) carry ``type`` instead of
``event`` and are kept as unknown.  No event id: an event's content
identifies it.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from connectorctl.delivery.events import BounceType, DeliveryEvent, EventType, epoch, mapping, recipient, text

VENDOR = "mailchimp"
TYPES = {
    "send": EventType.SENT,
    "deferral": EventType.DEFERRED,
    "hard_bounce": EventType.BOUNCED,
    "soft_bounce": EventType.BOUNCED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spam": EventType.COMPLAINED,
    "unsub": EventType.UNSUBSCRIBED,
    "reject": EventType.REJECTED,
}


def parse(body: bytes, received_at: float) -> list[DeliveryEvent]:
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    data = json.loads(form.get("mandrill_events") or "[]")
    return [_event(item, received_at) for item in (data if isinstance(data, list) else []) if isinstance(item, dict)]


def _event(item: dict[str, Any], received_at: float) -> DeliveryEvent:
    name = str(item.get("event") or item.get("type") or "")
    kind = TYPES.get(name, EventType.UNKNOWN) if item.get("event") else EventType.UNKNOWN
    msg = mapping(item.get("msg"))
    bounce = (
        {"hard_bounce": BounceType.HARD, "soft_bounce": BounceType.SOFT}.get(name)
        if kind is EventType.BOUNCED
        else None
    )
    reject = mapping(msg.get("reject"))
    reason = text(msg.get("diag")) or text(msg.get("bounce_description")) or text(reject.get("reason"))
    return DeliveryEvent(
        VENDOR,
        kind,
        epoch(item.get("ts"), received_at),
        text(item.get("_id") or msg.get("_id")),
        recipient(msg.get("email")),
        name,
        reason,
        bounce,
        raw=item,
    )
