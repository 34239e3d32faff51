"""The API's side of service health: reference timestamp forms and the status body.

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

__all__ = ["configured_services", "is_known_service", "now_utc", "period_text", "service_status", "timestamp"]


def now_utc(clock_time: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock_time(), timezone.utc)


def timestamp(moment: datetime) -> str:
    """The reference's timestamp form: ``2025-11-18T01:20:00+00:00``."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def period_text(moment: datetime) -> str:
    """The reference's period form: ``2025-10-18 00:00:00`` (UTC)."""
    m = moment.astimezone(timezone.utc)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"


def service_status(db: StateDB, settings: Settings, now: datetime) -> dict[str, Any]:
    """The ``GET /api/connector/status`` body: :func:`connectorctl.store.health.assess` in the reference shape.

    Per service: the reference's ``status``, ``success_rate``, ``avg_duration_ms``
    (both ``null`` when the window had no calls) plus ``circuit_state``, ``calls``
    and ``window_minutes``.  The same rules give ``connectorctl status`` its verdicts.
    """
    report = assess(db, settings, now)
    body = {
        s.service: {
            "status": s.status,
            "success_rate": s.success_rate,
            "avg_duration_ms": s.avg_duration_ms,
            "circuit_state": s.circuit_state,
            "calls": s.calls,
            "window_minutes": report.window_minutes,
        }
        for s in report.services
    }
    return {"services": body, "timestamp": timestamp(now)}
