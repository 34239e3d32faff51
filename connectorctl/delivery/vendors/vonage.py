"""Vonage SMS API delivery receipts (DLRs), posted as a form or as JSON.

Fields: ``messageId`` (the ``message-id`` our send got back), ``msisdn`` (the
recipient, without ``+``), ``status``, ``err-code`` (``0`` = none),
``message-timestamp`` (``YYYY-MM-DD HH:MM:SS``, UTC), ``client-ref`` (our
correlation id, which the send passes along).  A long text is billed as parts
and each part gets its own receipt.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from connectorctl.delivery.events import DeliveryEvent, EventType, recipient, text

VENDOR = "vonage"
TYPES = {
    "accepted": EventType.SENT,
    "buffered": EventType.DEFERRED,
    "delivered": EventType.DELIVERED,
    "expired": EventType.UNDELIVERED,
    "failed": EventType.FAILED,
    "rejected": EventType.REJECTED,
}


def parse(body: bytes, received_at: float) -> list[DeliveryEvent]:
    data: Any = (
        json.loads(body) if body.lstrip()[:1] == b"{" else dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    )
    if not isinstance(data, dict) or not data.get("messageId") or not data.get("status"):
        return []
    status = str(data["status"])
    error = text(data.get("err-code"))
    reason = f"err-code {error}" if error and error != "0" else None
    when = _timestamp(data.get("message-timestamp"), received_at)
    key = f"{data['messageId']}:{status}:{error or ''}"
    return [
        DeliveryEvent(
            VENDOR,
            TYPES.get(status, EventType.UNKNOWN),
            when,
            text(data["messageId"]),
            recipient(data.get("msisdn")),
            status,
            reason,
            None,
            key,
            text(data.get("client-ref")),
            raw=data,
        )
    ]


def _timestamp(value: Any, default: float) -> float:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return default
