"""Read-side queries over the integration log (metrics, listings)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc


def to_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return iso_utc(value.timestamp())


def metrics(db: StateDB, service: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The reference design's four numbers for one service and period.

    success_rate = successes / all attempts * 100 (2 decimals; 0.0 with no
    calls); avg_duration_ms over all attempts (1 decimal).
    """
    row = db.run(lambda c: c.execute(
        "SELECT count(*), coalesce(sum(status='success'), 0), avg(duration_ms) FROM integration_logs "
        "WHERE service_name=? AND created_at>=? AND created_at<=?",
        (service, to_iso(start), to_iso(end)),
    ).fetchone())
    total, success, avg = row
    return {
        "success_count": success,
        "failure_count": total - success,
        "success_rate": round(success * 100.0 / total, 2) if total else 0.0,
        "avg_duration_ms": round(avg, 1) if avg is not None else 0.0,
    }
