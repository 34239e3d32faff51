"""Service health: the one set of rules behind ``connectorctl status`` and ``GET /api/connector/status``.

Both surfaces must give the same verdict for the same database, so the rules
live here once and each surface only shapes the result:

* services: the email chain, the SMS chain and ``vendors:`` entries (in that
  order), then any other service with a circuit row or a call in the window
  (sorted), so a tripped or busy service is never hidden;
* window: the last ``status.window_minutes`` up to now, outbound calls only
  (inbound webhook deliveries, genuine or forged, say nothing about the vendor's API);
* calls are *logical* calls: every attempt of one call shares a correlation
  id, so a send that succeeded on its second attempt is one successful call.
  The success rate that decides the verdict is over logical calls; the
  attempt-level rate, average and p95 are reported beside it;
* ``down``: circuit open or forced open, or success rate below
  ``status.degraded_min_success_rate``;
* ``degraded``: circuit half-open (an open one past its timeout lets a probe
  through), or success rate below ``status.healthy_min_success_rate``;
* ``healthy``: otherwise, including no calls in the window (rate ``None``).
  A disabled breaker changes nothing.

The window is read in one snapshot (a per-attempt (service, duration)
histogram and the per-call outcomes), so all the numbers describe the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc
from connectorctl.store.queries import nearest_rank

HEALTHY, DEGRADED, DOWN = "healthy", "degraded", "down"
HEALTH_ORDER = {HEALTHY: 0, DEGRADED: 1, DOWN: 2}


@dataclass(frozen=True)
class ServiceHealth:
    """One service's verdict and the numbers it rests on."""

    service: str
    status: str
    calls: int
    successes: int
    success_rate: float | None
    attempts: int
    attempt_success_rate: float | None
    avg_duration_ms: float | None
    p95_ms: int | None
    circuit_state: str
    consecutive_failures: int

    @property
    def failure_count(self) -> int:
        return self.calls - self.successes


@dataclass(frozen=True)
class HealthReport:
    services: tuple[ServiceHealth, ...]
    now: datetime
    window_minutes: int

    @property
    def overall(self) -> str:
        worst = max((HEALTH_ORDER[s.status] for s in self.services), default=0)
        return next(k for k, v in HEALTH_ORDER.items() if v == worst)


def configured_services(settings: Any) -> list[str]:
    """Email chain, then SMS chain, then any other vendor with a settings block; no duplicates."""
    return list(dict.fromkeys((*settings.email_vendor, *settings.sms_vendor, *settings.vendors)))


def is_known_service(db: StateDB, settings: Any, service: str) -> bool:
    """Configured, in the vendor catalog, or present in the log / circuit table (one indexed probe each).

    What ``circuit trip`` and the API's ``/metrics/{service}`` and ``/logs?service=`` accept.
    """
    from connectorctl.adapters.catalog import VENDORS

    if service in VENDORS or service in configured_services(settings):
        return True
    return bool(
        db.run(
            lambda c: c.execute(
                "SELECT EXISTS (SELECT 1 FROM integration_logs INDEXED BY ix_logs_service_time_cover WHERE "
                "service_name = ?) "
                "OR EXISTS (SELECT 1 FROM circuit_state WHERE service_name = ?)",
                (service, service),
            ).fetchone()[0]
        )
    )


def effective_circuit_state(state: str, open_until: float | None, forced_until: float | None, now: float) -> str:
    """What the next call will meet: an open circuit past its timeout, or a forced-open period
    that has ended, lets one probe through (half_open)."""
    if state == "open" and open_until is not None and open_until <= now:
        return "half_open"
    if state == "forced_open" and forced_until is not None and forced_until <= now:
        return "half_open"
    return state


def verdict(settings: Any, circuit: str, success_rate: float | None) -> str:
    """healthy / degraded / down from the circuit state and the window's success rate (``None``: no calls)."""
    cfg = settings.status
    if circuit in ("open", "forced_open") or (
        success_rate is not None and success_rate < cfg.degraded_min_success_rate
    ):
        return DOWN
    if circuit == "half_open" or (success_rate is not None and success_rate < cfg.healthy_min_success_rate):
        return DEGRADED
    return HEALTHY


_WINDOW_SQL = (
    "SELECT service_name, duration_ms, count(*), count(*) FILTER (WHERE status = 'success') "
    "FROM integration_logs INDEXED BY ix_logs_time WHERE created_at >= ? AND created_at <= ? AND "
    "coalesce(direction, '') <> 'inbound' "
    "GROUP BY service_name, duration_ms ORDER BY service_name, duration_ms"
)
# One row per logical call: its attempts share a correlation id (a row without one is a call of its own).
_CALLS_SQL = (
    "SELECT service_name, count(*), coalesce(sum(ok), 0) FROM ("
    " SELECT service_name, max(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS ok FROM integration_logs INDEXED "
    "BY ix_logs_time"
    " WHERE created_at >= ? AND created_at <= ? AND coalesce(direction, '') <> 'inbound'"
    " GROUP BY service_name, coalesce(correlation_id, id)"
    ") AS calls GROUP BY service_name"
)
_CIRCUIT_SQL = "SELECT service_name, state, open_until, forced_until, consecutive_failures FROM circuit_state"


Rows = list[tuple[Any, ...]]


def _read_window(db: StateDB, since: datetime, now: datetime) -> tuple[Rows, Rows, Rows]:
    def read(c: Any) -> tuple[Rows, Rows, Rows]:
        span = (iso_utc(since.timestamp()), iso_utc(now.timestamp()))
        c.execute("BEGIN")  # one snapshot: the log window and the circuits describe the same moment
        try:
            rows = c.execute(_WINDOW_SQL, span).fetchall()
            calls = c.execute(_CALLS_SQL, span).fetchall()
            circuits = c.execute(_CIRCUIT_SQL).fetchall()
        finally:
            c.execute("COMMIT")
        return rows, calls, circuits

    return db.run(read)


def _percent(part: int, whole: int) -> float | None:
    return round(part * 100.0 / whole, 2) if whole else None


def assess(db: StateDB, settings: Any, now: datetime | None = None, services: list[str] | None = None) -> HealthReport:
    """Every known service's health over the recent window (exactly ``services`` when given)."""
    now = now or datetime.now(timezone.utc)
    window = settings.status.window_minutes
    rows, call_rows, circuit_rows = _read_window(db, now - timedelta(minutes=window), now)
    histograms: dict[str, list[tuple[int, int]]] = {}
    attempt_successes: dict[str, int] = {}
    for service, duration, count, ok in rows:
        histograms.setdefault(service, []).append((duration, count))
        attempt_successes[service] = attempt_successes.get(service, 0) + ok
    logical = {service: (calls, ok) for service, calls, ok in call_rows}
    circuits = {r[0]: r[1:] for r in circuit_rows}
    if services is None:
        configured = configured_services(settings)
        services = configured + sorted({*circuits, *histograms} - set(configured))
    report = []
    for name in services:
        histogram = histograms.get(name, [])
        attempts = sum(count for _, count in histogram)
        calls, ok = logical.get(name, (0, 0))
        rate = _percent(ok, calls)
        avg = round(sum(d * n for d, n in histogram) / attempts, 1) if attempts else None
        state, open_until, forced_until, failures = circuits.get(name, ("closed", None, None, 0))
        circuit = effective_circuit_state(state, open_until, forced_until, now.timestamp())
        report.append(
            ServiceHealth(
                service=name,
                status=verdict(settings, circuit, rate),
                calls=calls,
                successes=ok,
                success_rate=rate,
                attempts=attempts,
                attempt_success_rate=_percent(attempt_successes.get(name, 0), attempts),
                avg_duration_ms=avg,
                p95_ms=nearest_rank(histogram, attempts, 0.95),
                circuit_state=circuit,
                consecutive_failures=failures or 0,
            )
        )
    return HealthReport(services=tuple(report), now=now, window_minutes=window)
