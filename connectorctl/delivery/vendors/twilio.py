"""Twilio status callbacks: a form post to the message's ``StatusCallback`` on every status change.

Fields: ``MessageSid`` (the ``sid`` our send got back), ``MessageStatus``,
``To``, ``From``, ``ErrorCode`` on ``failed``/``undelivered``.  No timestamp
(the time of arrival stands in) and no event id: a message reaches each status
once, so sid + status + error code identifies the event.  Inbound-message
webhooks (``received``) are not delivery reports and give no event.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from connectorctl.delivery.events import DeliveryEvent, EventType, recipient, text

VENDOR = "twilio"
TYPES = {
    "accepted": EventType.QUEUED,
    "scheduled": EventType.QUEUED,
    "queued": EventType.QUEUED,
    "sending": EventType.QUEUED,
    "sent": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "undelivered": EventType.UNDELIVERED,
    "failed": EventType.FAILED,
    "read": EventType.OPENED,
    "canceled": EventType.REJECTED,
}
INBOUND = frozenset({"receiving", "received"})


def parse(body: bytes, received_at: float) -> list[DeliveryEvent]:
    form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    sid = text(form.get("MessageSid") or form.get("SmsSid"))
    status = text(form.get("MessageStatus") or form.get("SmsStatus"))
    if not sid or not status or status in INBOUND:
        return []
    error = text(form.get("ErrorCode"))
    reason = f"error {error}: {form.get('ErrorMessage') or 'see twilio.com/docs/errors/' + error}" if error else None
    return [
        DeliveryEvent(
            VENDOR,
            TYPES.get(status, EventType.UNKNOWN),
            received_at,
            sid,
            recipient(form.get("To")),
            status,
            reason,
            None,
            f"{sid}:{status}:{error or ''}",
            raw=form,
        )
    ]
