"""The write side: record what we sent, fold vendor reports into it, suppress where they say so.

A send's rows are committed before the send returns to its caller, so a
report can find them; a report that still arrives first is kept and applied
when the rows land.  Every function that takes ``conn`` runs inside the
caller's write transaction: the webhook receiver stores the raw delivery, its
events, the new states and the suppressions atomically.
"""

from __future__ import annotations

from typing import Any, Sequence

from connectorctl.delivery.events import DeliveryEvent, canonical
from connectorctl.domain.messages import SendResult
from connectorctl.ids import new_ulid
from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc

SUPPRESSION_REASONS = {"bounced": "hard bounce", "complained": "complaint", "unsubscribed": "unsubscribe"}


def tenant_key(tenant_id: str | None) -> str:
    """The tenant as stored: ``''`` for the default one; a lone surrogate (from undecodable argv bytes)
    escaped as the integration log does, since SQLite cannot store it."""
    return (tenant_id or "").encode("utf-8", "backslashreplace").decode("utf-8")


def message_key(vendor_message_id: str | None) -> str | None:
    """Vendors quote ids differently in answers and reports (Mailgun's ``<id@domain>``)."""
    return vendor_message_id.strip().strip("<>") if vendor_message_id else None


def record_sent(
    db: StateDB, result: SendResult, *, channel: str, tenant_id: str | None, correlation_id: str, now: float
) -> None:
    """One ``messages`` row per recipient of ``result``, plus any report that beat it here."""
    record_all(db, [(result, correlation_id)], channel=channel, tenant_id=tenant_id, now=now)


def record_all(
    db: StateDB, sent: Sequence[tuple[SendResult, str]], *, channel: str, tenant_id: str | None, now: float
) -> None:
    """:func:`record_sent` for many sends (a batch call's results, each with its correlation id), in one transaction."""
    rows = [
        (
            correlation_id,
            tenant_key(tenant_id),
            channel,
            result.vendor,
            message_key(r.message_id or result.message_id),
            r.recipient.lower() if "@" in r.recipient else r.recipient,
            r.status.value,
            r.reason,
            iso_utc(now),
        )
        for result, correlation_id in sent
        for r in result.recipients
    ]
    if not rows:
        return
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO messages (correlation_id, tenant_id, channel, vendor, vendor_message_id, recipient, "
            "accepted_status, "
            "accepted_reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )
        for row in rows:
            if row[4] is not None:
                _apply_earlier_reports(conn, row[3], row[4], row[5])


def _apply_earlier_reports(conn: Any, vendor: str, vendor_message_id: str, recipient: str) -> None:
    best = conn.execute(
        "SELECT event_type, rank, occurred_at, reason FROM delivery_events WHERE vendor = ? AND vendor_message_id = ? "
        "AND (recipient IS NULL OR recipient = ?) ORDER BY rank DESC, occurred_at LIMIT 1",
        (vendor, vendor_message_id, recipient),
    ).fetchone()
    if best is not None and best[1] > 0:
        conn.execute(
            "UPDATE messages SET delivery = ?, delivery_rank = ?, delivery_at = ?, delivery_reason = ? "
            "WHERE vendor = ? AND vendor_message_id = ? AND recipient = ?",
            (*best, vendor, vendor_message_id, recipient),
        )


def ingest(
    conn: Any, events: Sequence[DeliveryEvent], *, received_at: float, webhook_event_id: str | None
) -> tuple[int, int]:
    """Store each event once and advance its message; returns (stored, duplicates)."""
    stored = duplicates = 0
    for event in events:
        inserted = conn.execute(
            "INSERT INTO delivery_events (id, vendor, event_key, event_type, bounce_type, vendor_event, rank, "
            "vendor_message_id, "
            "recipient, correlation_id, occurred_at, received_at, reason, webhook_event_id, raw) VALUES (?, ?, ?, "
            "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (
                new_ulid(received_at),
                event.vendor,
                event.event_key,
                event.type.value,
                event.bounce_type.value if event.bounce_type else None,
                event.vendor_event,
                event.rank,
                message_key(event.vendor_message_id),
                event.recipient,
                event.correlation_id,
                iso_utc(event.occurred_at),
                iso_utc(received_at),
                event.reason,
                webhook_event_id,
                canonical(event.raw),
            ),
        ).rowcount
        if not inserted:
            duplicates += 1
            continue
        stored += 1
        tenants = _advance(conn, event)
        if event.suppresses and event.recipient:
            for tenant in tenants or [""]:
                suppress(
                    conn,
                    tenant,
                    event.recipient,
                    SUPPRESSION_REASONS[event.type.value],
                    vendor=event.vendor,
                    detail=event.reason,
                    at=event.occurred_at,
                )
    return stored, duplicates


def _advance(conn: Any, event: DeliveryEvent) -> list[str]:
    """Move the event's message rows forward (never back); returns their tenants."""
    for where, params in _matches(event):
        found = conn.execute(f"SELECT id, tenant_id FROM messages WHERE {where}", params).fetchall()
        if not found:
            continue
        if event.rank > 0:
            conn.execute(
                "UPDATE messages SET delivery = ?, delivery_rank = ?, delivery_at = ?, delivery_reason = ? WHERE "
                f"{where} AND delivery_rank < ?",
                (event.type.value, event.rank, iso_utc(event.occurred_at), event.reason, *params, event.rank),
            )
        return sorted({row[1] for row in found})
    return []


def _matches(event: DeliveryEvent) -> list[tuple[str, list[Any]]]:
    """Ways to find the event's messages, best first: the vendor's message id, then our correlation id
    where the vendor echoes it (a Vonage receipt for the second part of a long SMS has its own id)."""
    ways = []
    if event.vendor_message_id:
        ways.append(("vendor = ? AND vendor_message_id = ?", [event.vendor, message_key(event.vendor_message_id)]))
    if event.correlation_id:
        ways.append(("vendor = ? AND correlation_id = ?", [event.vendor, event.correlation_id]))
    if event.recipient:
        ways = [(where + " AND recipient = ?", [*params, event.recipient]) for where, params in ways]
    return ways


def suppress(
    conn: Any, tenant_id: str, address: str, reason: str, *, vendor: str | None, detail: str | None, at: float
) -> bool:
    """Add ``address`` unless already there (the first reason is the one reported); True when added."""
    return bool(
        conn.execute(
            "INSERT INTO suppressions (tenant_id, address, reason, vendor, detail, created_at) VALUES (?, ?, ?, ?, "
            "?, ?) ON CONFLICT DO NOTHING",
            (tenant_id, address, reason, vendor, detail, iso_utc(at)),
        ).rowcount
    )


def purge_before(db: StateDB, cutoff: str, batch_size: int = 5000) -> int:
    """Delete sends and reports older than ``cutoff`` (ISO UTC) with the integration log they explain,
    in short batches; suppressions stay until lifted."""
    deleted = 0
    for table, column in (("messages", "created_at"), ("delivery_events", "received_at")):  # each keyed by ``id``
        while True:
            with db.write() as conn:
                n = conn.execute(
                    f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE {column} < ? LIMIT ?)",
                    (cutoff, batch_size),
                ).rowcount
            deleted += n
            if n < batch_size:
                break
    return deleted
