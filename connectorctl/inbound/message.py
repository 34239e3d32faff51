"""The normalized inbound message, whatever vendor forwarded it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class InboundAttachment:
    filename: str
    content_type: str
    size: int
    content: bytes | None = field(default=None, repr=False)  # as received; None once stored (read it with ``key``)
    content_id: str | None = None  # inline images: the cid the HTML refers to
    key: str | None = None  # where the storage role keeps it


@dataclass(frozen=True)
class InboundMessage:
    """One received email.  ``verdicts`` are the vendor's own checks when it gives them
    (``spam``, ``spam_score``, ``spf``, ``dkim``), as lower-case text."""

    service: str
    from_email: str
    to: tuple[str, ...]
    subject: str = ""
    text: str | None = None
    html: str | None = None
    from_name: str | None = None
    cc: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    attachments: tuple[InboundAttachment, ...] = ()
    verdicts: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None  # the Message-ID header
    id: str | None = None  # ours, once stored
    received_at: str | None = None

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    @property
    def dedup_key(self) -> str:
        """What makes two deliveries the same message: its Message-ID, else a hash of what it says."""
        if self.message_id:
            return "mid:" + self.message_id.strip().strip("<>")
        h = hashlib.sha256()
        for part in (
            self.from_email,
            ",".join(self.to),
            self.subject,
            self.text or "",
            self.html or "",
            *(f"{a.filename}:{a.size}" for a in self.attachments),
        ):
            h.update(part.encode("utf-8", "surrogatepass") + b"\x00")
        return "sha256:" + h.hexdigest()[:40]

    def stored(self, id: str, received_at: str, attachments: tuple[InboundAttachment, ...]) -> "InboundMessage":
        return replace(self, id=id, received_at=received_at, attachments=attachments)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "received_at": self.received_at,
            "message_id": self.message_id,
            "from": self.from_email,
            "from_name": self.from_name,
            "to": list(self.to),
            "cc": list(self.cc),
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "headers": [list(h) for h in self.headers],
            "verdicts": dict(self.verdicts),
            "attachments": [
                {
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "content_id": a.content_id,
                    "key": a.key,
                }
                for a in self.attachments
            ],
        }
