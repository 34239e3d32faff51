"""Messages as the outbox stores them: plain JSON, attachments in base64.

The stored form is the message as checked and normalised at enqueue time, so a
worker rebuilds exactly what a send at that moment would have sent.
"""

from __future__ import annotations

import base64
from dataclasses import fields
from datetime import datetime
from typing import Any, Mapping

from connectorctl.domain.messages import Attachment, EmailMessage, SmsMessage

Message = EmailMessage | SmsMessage


def encode(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields(message):
        value = getattr(message, f.name)
        if f.name == "attachments":
            value = [
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "content": base64.b64encode(a.content).decode("ascii"),
                }
                for a in value
            ]
        elif isinstance(value, Mapping):
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        data[f.name] = value
    return data


def decode(channel: str, data: Mapping[str, Any]) -> Message:
    if channel == "sms":
        return SmsMessage(**data)
    values = dict(data)
    values["attachments"] = tuple(
        Attachment(a["filename"], base64.b64decode(a["content"]), a["content_type"])
        for a in values.get("attachments", ())
    )
    if values.get("send_at"):
        values["send_at"] = datetime.fromisoformat(values["send_at"])
    return EmailMessage(**values)


def channel_of(message: Message) -> str:
    return "sms" if isinstance(message, SmsMessage) else "email"
