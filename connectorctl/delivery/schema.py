"""Delivery tables (migrations 70-79): what we sent, what vendors reported, who must not be sent to.

``messages`` has one row per recipient of each accepted send, keyed by the
vendor's message id so a report finds it; its ``delivery`` columns hold the
furthest state reported so far.  ``delivery_events`` keeps every report once
(``UNIQUE (vendor, event_key)``), linked or not.  ``suppressions`` is per
tenant; ``''`` is the default tenant (a primary key cannot hold NULL usefully).
"""

from __future__ import annotations

from typing import Any

from connectorctl.store.migrations import migration


@migration(70, "messages")
def _messages(db: Any) -> None:
    db.execute(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, correlation_id TEXT NOT NULL, tenant_id TEXT NOT NULL DEFAULT "
        "'', "
        "channel TEXT NOT NULL, vendor TEXT NOT NULL, vendor_message_id TEXT, recipient TEXT NOT NULL, "
        "accepted_status TEXT NOT NULL, "
        "accepted_reason TEXT, created_at TEXT NOT NULL, delivery TEXT, delivery_rank INTEGER NOT NULL DEFAULT 0, "
        "delivery_at TEXT, "
        "delivery_reason TEXT, UNIQUE (vendor, vendor_message_id, recipient))"
    )
    db.execute("CREATE INDEX ix_messages_correlation ON messages(correlation_id)")
    db.execute("CREATE INDEX ix_messages_vendor_time ON messages(vendor, created_at)")
    db.execute("CREATE INDEX ix_messages_delivery ON messages(delivery, created_at) WHERE delivery IS NOT NULL")


@migration(71, "delivery_events")
def _delivery_events(db: Any) -> None:
    db.execute(
        "CREATE TABLE delivery_events (id TEXT PRIMARY KEY, vendor TEXT NOT NULL, event_key TEXT NOT NULL, event_type "
        "TEXT NOT NULL, "
        "bounce_type TEXT, vendor_event TEXT NOT NULL, rank INTEGER NOT NULL, vendor_message_id TEXT, recipient TEXT, "
        "correlation_id TEXT, occurred_at TEXT NOT NULL, received_at TEXT NOT NULL, reason TEXT, webhook_event_id "
        "TEXT, "
        "raw TEXT NOT NULL, UNIQUE (vendor, event_key))"
    )
    db.execute("CREATE INDEX ix_delivery_events_message ON delivery_events(vendor, vendor_message_id)")


@migration(72, "suppressions")
def _suppressions(db: Any) -> None:
    db.execute(
        "CREATE TABLE suppressions (tenant_id TEXT NOT NULL DEFAULT '', address TEXT NOT NULL, reason TEXT NOT NULL, "
        "vendor TEXT, detail TEXT, created_at TEXT NOT NULL, PRIMARY KEY (tenant_id, address)) WITHOUT ROWID"
    )


@migration(73, "delivery_events by correlation id")
def _events_by_correlation(db: Any) -> None:
    """Reports that name our correlation id instead of a message id we stored (Vonage's later parts)."""
    db.execute(
        "CREATE INDEX ix_delivery_events_correlation ON delivery_events(vendor, correlation_id) WHERE correlation_id "
        "IS NOT NULL"
    )
