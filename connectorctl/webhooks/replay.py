"""The SQLite replay store: has this delivery id been seen while it could still pass?

One ``BEGIN IMMEDIATE`` transaction per check makes check-and-record atomic
across processes, so two workers receiving the same delivery cannot both
accept it.  Expired rows are ignored and overwritten; :func:`prune_replay_store`
deletes them (called by the log purge).
"""

from __future__ import annotations

from typing import Any

from connectorctl.store.db import StateDB


class ReplayStore:
    def __init__(self, db: StateDB) -> None:
        self.db = db

    def check_and_record(self, service: str, event_id: str, *, now: float, expires_at: float) -> bool:
        """Record ``event_id``; return False when it was already seen and has not expired (a replay)."""
        with self.db.write() as conn:
            return record_in(conn, service, event_id, now=now, expires_at=expires_at)

    def seen(self, service: str, event_id: str, *, now: float) -> bool:
        row = self.db.run(
            lambda c: c.execute(
                "SELECT 1 FROM seen_webhook_events WHERE service = ? AND event_id = ? AND expires_at > ?",
                (service, event_id, now),
            ).fetchone()
        )
        return row is not None


def record_in(conn: Any, service: str, event_id: str, *, now: float, expires_at: float) -> bool:
    """:meth:`ReplayStore.check_and_record` inside a write transaction the caller holds, so the
    receiver can record the id and keep the event atomically; False for an unexpired id."""
    row = conn.execute(
        "SELECT expires_at FROM seen_webhook_events WHERE service = ? AND event_id = ?", (service, event_id)
    ).fetchone()
    if row is not None and row[0] > now:
        return False
    conn.execute(
        "INSERT INTO seen_webhook_events (service, event_id, seen_at, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (service, event_id) DO UPDATE SET seen_at = excluded.seen_at, expires_at = excluded.expires_at",
        (service, event_id, now, expires_at),
    )
    return True


def prune_replay_store(db: StateDB, now: float) -> int:
    """Delete replay-store rows that expired at or before ``now``; returns how many."""
    with db.write() as conn:
        return conn.execute("DELETE FROM seen_webhook_events WHERE expires_at <= ?", (now,)).rowcount
