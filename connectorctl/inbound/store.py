"""Keeping inbound messages: attachments through the storage role, the message as one row, each once.

An attachment's key is derived from the message's dedup key, so a vendor's
retry of a delivery rewrites the same objects instead of adding new ones; the
row is inserted only if that message is new.  Bodies and headers are kept as
the JSON of :meth:`InboundMessage.to_dict`, so ``inbound show`` prints what the
hook received.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from connectorctl.errors import InvalidInputError
from connectorctl.ids import new_ulid
from connectorctl.inbound.message import InboundAttachment, InboundMessage
from connectorctl.store.logs import iso_utc

if TYPE_CHECKING:
    from connectorctl.gateway import Connector

PREFIX = "inbound"


def attachment_key(message: InboundMessage, index: int, filename: str) -> str:
    digest = hashlib.sha256(f"{message.service}\x00{message.dedup_key}".encode("utf-8", "surrogatepass")).hexdigest()[
        :32
    ]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("._") or "attachment"
    return f"{PREFIX}/{message.service}/{digest}/{index}-{safe[:100]}"


def save(connector: "Connector", message: InboundMessage, now: float) -> tuple[InboundMessage, bool]:
    """Store ``message`` once: (the stored message, whether it was new)."""
    storage = connector.storage() if message.attachments else None
    attachments = []
    for n, attachment in enumerate(message.attachments, start=1):
        key = attachment_key(message, n, attachment.filename)
        assert storage is not None
        storage.put(key, attachment.content or b"", content_type=attachment.content_type)
        attachments.append(replace(attachment, content=None, key=key))
    stored = message.stored(new_ulid(), iso_utc(now), tuple(attachments))
    with connector.db.write() as conn:
        inserted = conn.execute(
            "INSERT INTO inbound_messages (id, service, dedup_key, received_at, from_email, subject, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service, dedup_key) DO NOTHING",
            (
                stored.id,
                stored.service,
                message.dedup_key,
                stored.received_at,
                stored.from_email,
                stored.subject,
                json.dumps(stored.to_dict()),
            ),
        ).rowcount
    return stored, bool(inserted)


def record_hook_errors(connector: "Connector", message_id: str, errors: Sequence[str]) -> None:
    connector.db.run(
        lambda c: c.execute(
            "UPDATE inbound_messages SET hook_errors = ? WHERE id = ?", (json.dumps(list(errors)), message_id)
        )
    )


def listing(connector: "Connector", *, service: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first: id, service, time, sender, subject and attachment count."""
    sql = "SELECT id, service, received_at, from_email, subject, message, hook_errors FROM inbound_messages"
    params: list[Any] = []
    if service:
        sql += " WHERE service = ?"
        params.append(service)
    sql += " ORDER BY received_at DESC, id DESC LIMIT ?"
    params.append(limit)
    rows = connector.db.run(lambda c: c.execute(sql, params).fetchall())
    return [
        {
            "id": r[0],
            "service": r[1],
            "received_at": r[2],
            "from": r[3],
            "subject": r[4],
            "attachments": len(json.loads(r[5])["attachments"]),
            "hook_errors": json.loads(r[6]) if r[6] else [],
        }
        for r in rows
    ]


def get(connector: "Connector", message_id: str) -> InboundMessage:
    row = connector.db.run(
        lambda c: c.execute("SELECT message FROM inbound_messages WHERE id = ?", (message_id,)).fetchone()
    )
    if row is None:
        raise InvalidInputError(f"no inbound message {message_id!r}", hint="connectorctl inbound list")
    data = json.loads(row[0])
    return InboundMessage(
        data["service"],
        data["from"],
        tuple(data["to"]),
        data["subject"],
        data["text"],
        data["html"],
        data["from_name"],
        tuple(data["cc"]),
        tuple((k, v) for k, v in data["headers"]),
        tuple(
            InboundAttachment(a["filename"], a["content_type"], a["size"], None, a["content_id"], a["key"])
            for a in data["attachments"]
        ),
        data["verdicts"],
        data["message_id"],
        data["id"],
        data["received_at"],
    )


def save_attachments(connector: "Connector", message: InboundMessage, directory: Path) -> list[Path]:
    """Each attachment into ``directory`` under its own (sanitised, de-duplicated) file name."""
    directory.mkdir(parents=True, exist_ok=True)
    storage = connector.storage()
    written: list[Path] = []
    for attachment in message.attachments:
        name = re.sub(r"[\x00-\x1f/\\]+", "_", attachment.filename).strip().lstrip(".") or "attachment"  # never a path
        target = directory / name
        n = 1
        while target.exists() or target in written:
            n += 1
            target = directory / f"{Path(name).stem}-{n}{Path(name).suffix}"
        assert attachment.key is not None
        storage.download_to(attachment.key, target)
        written.append(target)
    return written
