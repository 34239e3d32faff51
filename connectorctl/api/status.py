"""Service health as the API reports it: configured services, their recent
success rate and latency, their circuit state, and one verdict each.

The verdict uses the config's ``status`` thresholds over a short recent window
(``status.window_minutes``, default 15) so the query stays a small range scan
of the covering index ``ix_logs_service_time_cover`` even on millions of rows:

* ``down``     circuit open or forced open, or success rate < ``degraded_min_success_rate``
* ``degraded`` circuit half-open, or success rate < ``healthy_min_success_rate``
* ``healthy``  otherwise, including when there were no calls in the window

These helpers could move into ``store/queries.py`` (they are pure reads).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from connectorctl.adapters.catalog import VENDORS
from connectorctl.config import Settings
from connectorctl.domain.values import CircuitState
from connectorctl.store.db import StateDB
from connectorctl.store.queries import to_iso

HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"


def now_utc(clock_time: Callable[[], float]) -> datetime:
    return datetime.fromtimestamp(clock_time(), timezone.utc)


def timestamp(moment: datetime) -> str:
    """The reference's timestamp form: ``2025-11-18T01:20:00+00:00``."""
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat()


def period_text(moment: datetime) -> str:
    """The reference's period form: ``2025-10-18 00:00:00`` (UTC)."""
    m = moment.astimezone(timezone.utc)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour:02d}:{m.minute:02d}:{m.second:02d}"


def configured_services(settings: Settings) -> list[str]:
    """Email chain, then SMS chain, then any other vendor with a settings block; no duplicates."""
    seen: dict[str, None] = {}
    for slug in (*settings.email_vendor, *settings.sms_vendor, *settings.vendors):
        seen.setdefault(slug, None)
    return list(seen)


def is_known_service(db: StateDB, settings: Settings, service: str) -> bool:
    """Configured, in the vendor catalog, or present in the log / circuit table (one indexed probe each)."""
    if service in VENDORS or service in settings.vendors or service in configured_services(settings):
        return True
    return bool(db.run(lambda c: c.execute(
        "SELECT EXISTS (SELECT 1 FROM integration_logs INDEXED BY ix_logs_service_time_cover WHERE service_name = ?) "
        "OR EXISTS (SELECT 1 FROM circuit_state WHERE service_name = ?)",
        (service, service),
    ).fetchone()[0]))


def window_stats(db: StateDB, services: list[str], since: datetime) -> dict[str, tuple[int, int, float | None]]:
    """service -> (calls, successes, avg duration) since ``since``, from the covering index only."""
    if not services:
        return {}
    marks = ", ".join("?" for _ in services)
    sql = (
        "SELECT service_name, count(*), coalesce(sum(status = 'success'), 0), avg(duration_ms) "
        f"FROM integration_logs INDEXED BY ix_logs_service_time_cover WHERE service_name IN ({marks}) AND created_at >= ? "
        "GROUP BY service_name"
    )
    rows = db.run(lambda c: c.execute(sql, [*services, to_iso(since)]).fetchall())
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def circuit_states(db: StateDB, services: list[str], now: float) -> dict[str, str]:
    """Effective circuit state per service (an open circuit whose timeout passed reads as half_open)."""
    if not services:
        return {}
    marks = ", ".join("?" for _ in services)
    rows = db.run(lambda c: c.execute(
        f"SELECT service_name, state, open_until, forced_until FROM circuit_state WHERE service_name IN ({marks})", services
    ).fetchall())
    states = {s: CircuitState.CLOSED.value for s in services}
    for service, state, open_until, forced_until in rows:
        if state == CircuitState.OPEN and open_until is not None and open_until <= now:
            state = CircuitState.HALF_OPEN.value
        elif state == CircuitState.FORCED_OPEN and forced_until is not None and forced_until <= now:
            state = CircuitState.CLOSED.value
        states[service] = state
    return states


def verdict(settings: Settings, circuit: str, calls: int, success_rate: float | None) -> str:
    if circuit in (CircuitState.OPEN, CircuitState.FORCED_OPEN):
        return DOWN
    if calls and success_rate is not None and success_rate < settings.status.degraded_min_success_rate:
        return DOWN
    if circuit == CircuitState.HALF_OPEN:
        return DEGRADED
    if calls and success_rate is not None and success_rate < settings.status.healthy_min_success_rate:
        return DEGRADED
    return HEALTHY


def service_status(db: StateDB, settings: Settings, now: datetime) -> dict[str, Any]:
    """The ``GET /api/connector/status`` body.

    Per service: the reference's ``status``, ``success_rate``, ``avg_duration_ms``
    (both ``null`` when the window had no calls) plus ``circuit_state``, ``calls``
    and ``window_minutes``.
    """
    services = configured_services(settings)
    window = settings.status.window_minutes
    stats = window_stats(db, services, now - timedelta(minutes=window))
    circuits = circuit_states(db, services, now.timestamp())
    body: dict[str, Any] = {}
    for service in services:
        calls, ok, avg = stats.get(service, (0, 0, None))
        rate = round(ok * 100.0 / calls, 2) if calls else None
        body[service] = {
            "status": verdict(settings, circuits[service], calls, rate),
            "success_rate": rate,
            "avg_duration_ms": round(avg, 1) if avg is not None else None,
            "circuit_state": circuits[service],
            "calls": calls,
            "window_minutes": window,
        }
    return {"services": body, "timestamp": timestamp(now)}


def database_check(db_factory: Callable[[], StateDB]) -> tuple[bool, str | None]:
    """A real round trip: open (and migrate) the file, read the schema and the newest log row."""
    from connectorctl.errors import ConnectorctlError

    try:
        db = db_factory()
        db.run(lambda c: c.execute("SELECT count(*) FROM sqlite_master").fetchone())
        db.run(lambda c: c.execute("SELECT seq FROM integration_logs ORDER BY seq DESC LIMIT 1").fetchone())
    except ConnectorctlError as exc:
        return False, exc.message
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"; the reason is reported
        return False, type(exc).__name__
    return True, None
