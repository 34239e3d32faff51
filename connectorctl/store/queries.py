"""Read-side queries over the integration log, shared by the CLI and the HTTP API.

Signatures here are a contract between `connectorctl logs/metrics/status` and
`connectorctl serve`; keep them stable and put improvements behind them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from connectorctl.errors import InvalidInputError
from connectorctl.store.db import StateDB
from connectorctl.store.logs import iso_utc

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
LOG_COLUMNS = (
    "id", "tenant_id", "service_name", "operation", "endpoint", "method", "status", "http_status_code",
    "duration_ms", "request_data", "response_data", "error_message", "error_code", "attempt_number",
    "correlation_id", "direction", "created_at",
)
SUMMARY_COLUMNS = ("id", "service_name", "endpoint", "method", "status", "http_status_code", "duration_ms", "error_message", "created_at")


def to_iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return iso_utc(value.timestamp())


_RELATIVE = re.compile(r"^\s*-?\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hour|hours|d|day|days|w|week|weeks)\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str, now: datetime | None = None, *, name: str = "time") -> datetime:
    """``7d``, ``-30days``, ``90m``, ``now`` or ISO 8601 (naive means UTC) -> aware UTC datetime."""
    now = now or datetime.now(timezone.utc)
    raw = text.strip()
    if raw.lower() == "now":
        return now
    match = _RELATIVE.match(raw)
    if match:
        amount, unit = float(match.group(1)), match.group(2).lower()
        key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
        return now - timedelta(seconds=amount * _UNITS[key])
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"invalid {name} {text!r}: use a duration like 7d, -30days, 1h or an ISO 8601 date") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass(frozen=True)
class LogFilter:
    service: str | None = None
    status: str | None = None
    tenant_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    operation: str | None = None
    correlation_id: str | None = None
    direction: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("service_name", self.service), ("status", self.status), ("tenant_id", self.tenant_id),
            ("operation", self.operation), ("correlation_id", self.correlation_id), ("direction", self.direction),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(to_iso(self.since))
        if self.until is not None:
            clauses.append("created_at <= ?")
            params.append(to_iso(self.until))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def check_limit(limit: int, offset: int = 0) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if offset < 0:
        raise InvalidInputError(f"offset must be 0 or more, got {offset}")


def list_logs(db: StateDB, flt: LogFilter, limit: int = DEFAULT_LIMIT, offset: int = 0) -> list[dict[str, Any]]:
    """Newest first, like the reference API."""
    check_limit(limit, offset)
    where, params = flt.where()
    sql = f"SELECT {', '.join(LOG_COLUMNS)} FROM integration_logs{where} ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?"
    rows = db.run(lambda c: c.execute(sql, [*params, limit, offset]).fetchall())
    return [dict(zip(LOG_COLUMNS, r)) for r in rows]


def get_log(db: StateDB, log_id: str) -> dict[str, Any] | None:
    row = db.run(lambda c: c.execute(f"SELECT {', '.join(LOG_COLUMNS)} FROM integration_logs WHERE id = ?", (log_id,)).fetchone())
    return dict(zip(LOG_COLUMNS, row)) if row else None


def metrics(db: StateDB, service: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The reference design's numbers for one service and period, plus latency percentiles.

    success_count = attempts with status 'success'; failure_count = every other
    attempt; success_rate = success / all * 100 rounded to 2 places (0.0 when
    there were no calls); avg_duration_ms over all attempts, 1 place.
    Percentiles are nearest-rank (ceil(p * n)) over all attempts' durations.
    """
    params = (service, to_iso(start), to_iso(end))
    row = db.run(lambda c: c.execute(
        "SELECT count(*), coalesce(sum(status='success'), 0), avg(duration_ms), coalesce(sum(attempt_number > 1), 0) "
        "FROM integration_logs WHERE service_name=? AND created_at>=? AND created_at<=?",
        params,
    ).fetchone())
    total, success, avg, retries = row
    result: dict[str, Any] = {
        "success_count": success,
        "failure_count": total - success,
        "success_rate": round(success * 100.0 / total, 2) if total else 0.0,
        "avg_duration_ms": round(avg, 1) if avg is not None else 0.0,
        "retry_count": retries,
    }
    durations = [r[0] for r in db.run(lambda c: c.execute(
        "SELECT duration_ms FROM integration_logs WHERE service_name=? AND created_at>=? AND created_at<=? ORDER BY duration_ms", params
    ).fetchall())]
    for label, p in (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        result[label] = nearest_rank(durations, p)
    return result


def nearest_rank(sorted_values: list[int], p: float) -> int | None:
    if not sorted_values:
        return None
    import math

    rank = max(1, math.ceil(p * len(sorted_values)))
    return sorted_values[rank - 1]


def known_services(db: StateDB) -> list[str]:
    rows = db.run(lambda c: c.execute(
        "SELECT service_name FROM circuit_state UNION SELECT DISTINCT service_name FROM integration_logs ORDER BY 1"
    ).fetchall())
    return [r[0] for r in rows]
