"""Inbound mail table (migration 90): one row per received message, its attachments in the storage role."""

from __future__ import annotations

from typing import Any

from connectorctl.store.migrations import migration


@migration(90, "inbound_messages")
def _inbound_messages(db: Any) -> None:
    db.execute(
        "CREATE TABLE inbound_messages (id TEXT PRIMARY KEY, service TEXT NOT NULL, dedup_key TEXT NOT NULL, "
        "received_at TEXT NOT NULL, from_email TEXT NOT NULL, subject TEXT NOT NULL, message TEXT NOT NULL, "
        "hook_errors TEXT, UNIQUE (service, dedup_key))"
    )
    db.execute("CREATE INDEX ix_inbound_messages_time ON inbound_messages(received_at)")
