"""The API's side of service health: timestamp forms and the status body.

The verdicts themselves (which services, the window, healthy / degraded / down,
circuit state) come from :mod:`connectorctl.store.health`, the rules
``connectorctl status`` uses too; this module only gives them the reference
``GET /api/connector/status`` shape.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from connectorctl.settings import Settings
from connectorctl.store.db import StateDB
from connectorctl.store.health import assess, configured_services, is_known_service

__all__ = ["configured_services", "is_known_service", "now_utc", "service_status", "timestamp"]


def now_utc(clock_time: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock_time(), timezone.utc)


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC, as every machine output: ``2025-11-18T01:20:00.000Z``."""
    from connectorctl.store.queries import to_iso

    return to_iso(moment)


def service_status(db: StateDB, settings: Settings, now: datetime) -> dict[str, Any]:
    """The ``GET /api/connector/status`` body: :func:`connectorctl.store.health.assess` in the reference shape.

    Per service: the reference's ``status``, ``success_rate``, ``avg_duration_ms``
    (both ``null`` when the window had no calls) plus ``circuit_state``, ``calls``,
    ``attempts``, ``attempt_success_rate`` and ``window_minutes``.  ``calls`` and
    ``success_rate`` count logical calls (all attempts of one call are one call).
    The same rules give ``connectorctl status`` its verdicts.
    """
    report = assess(db, settings, now)
    body = {
        s.service: {
            "status": s.status,
            "success_rate": s.success_rate,
            "avg_duration_ms": s.avg_duration_ms,
            "circuit_state": s.circuit_state,
            "calls": s.calls,
            "attempts": s.attempts,
            "attempt_success_rate": s.attempt_success_rate,
            "window_minutes": report.window_minutes,
        }
        for s in report.services
    }
    return {"services": body, "timestamp": timestamp(now)}
