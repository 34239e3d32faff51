"""Webhook tables (migrations 20-29): the replay store and accepted events.

``seen_webhook_events`` remembers delivery ids until they could no longer pass
the freshness check (``expires_at``), so it stays small and the log purge prunes
it.  ``webhook_events`` keeps every accepted delivery once, for later processing.
"""

from __future__ import annotations

from typing import Any

from connectorctl.store.migrations import migration


@migration(20, "webhook_replay_store")
def _seen_webhook_events(db: Any) -> None:
    db.execute(
        "CREATE TABLE seen_webhook_events (service TEXT NOT NULL, event_id TEXT NOT NULL, "
        "seen_at REAL NOT NULL, expires_at REAL NOT NULL, PRIMARY KEY (service, event_id)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX ix_seen_webhook_events_expiry ON seen_webhook_events(expires_at)")


@migration(21, "webhook_events")
def _webhook_events(db: Any) -> None:
    db.execute(
        "CREATE TABLE webhook_events (id TEXT PRIMARY KEY, service TEXT NOT NULL, event_id TEXT NOT NULL, "
        "event_type TEXT, scheme TEXT NOT NULL, received_at TEXT NOT NULL, payload TEXT NOT NULL, "
        "processed_at TEXT, UNIQUE (service, event_id))"
    )
    db.execute(
        "CREATE INDEX ix_webhook_events_pending ON webhook_events(service, received_at) WHERE processed_at IS NULL"
    )


from connectorctl.webhooks.replay import prune_replay_store  # noqa: E402  (re-exported for the log purge)

__all__ = ["prune_replay_store"]
