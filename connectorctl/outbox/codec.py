"""Messages as the outbox stores them: plain JSON, attachments in base64.

The stored form is the message as the caller gave it (before validation),
so a worker rebuilds exactly what would have been sent at enqueue time.
"""

from __future__ import annotations

import base64
from dataclasses import fields
from typing import Any, Mapping

from connectorctl.domain.messages import Attachment, EmailMessage, SmsMessage

Message = EmailMessage | SmsMessage


def encode(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = {f.name: getattr(message, f.name) for f in fields(message)}
    if isinstance(message, SmsMessage):
        return data
    data.update(
        headers=dict(message.headers),
        metadata=dict(message.metadata),
        to=list(message.to),
        cc=list(message.cc),
        bcc=list(message.bcc),
        tags=list(message.tags),
    )
    data["attachments"] = [
        {"filename": a.filename, "content_type": a.content_type, "content": base64.b64encode(a.content).decode("ascii")}
        for a in message.attachments
    ]
    return data


def decode(channel: str, data: Mapping[str, Any]) -> Message:
    if channel == "sms":
        return SmsMessage(**data)
    fields = dict(data)
    fields["attachments"] = tuple(
        Attachment(a["filename"], base64.b64decode(a["content"]), a["content_type"])
        for a in fields.get("attachments", ())
    )
    return EmailMessage(**fields)


def channel_of(message: Message) -> str:
    return "sms" if isinstance(message, SmsMessage) else "email"
