"""Read-side queries over the integration log, shared by the CLI and the HTTP API.

Signatures here are a contract between `connectorctl logs/metrics/status` and
`connectorctl serve`; keep them stable and put improvements behind them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterable, Sequence

from connectorctl.errors import InvalidInputError
from connectorctl.store.db import StateDB
from connectorctl.times import MAX_DURATION_S, parse_duration, parse_time, to_iso  # noqa: F401 - importable from here as before

MAX_LIMIT = 500
MAX_SQL_INT = 2**63 - 1
DEFAULT_LIMIT = 100
LOG_COLUMNS = (
    "id",
    "tenant_id",
    "service_name",
    "operation",
    "endpoint",
    "method",
    "status",
    "http_status_code",
    "duration_ms",
    "request_data",
    "response_data",
    "error_message",
    "error_code",
    "attempt_number",
    "correlation_id",
    "direction",
    "created_at",
)
_JSON_COLUMNS = ("request_data", "response_data")


def log_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A log row as every machine output shows it (API, ``-o json``/``jsonl``).

    Stored JSON payloads become JSON values rather than strings inside JSON.
    """
    import json

    for column in _JSON_COLUMNS:
        raw = row.get(column)
        if isinstance(raw, str):
            try:
                row[column] = json.loads(raw)
            except ValueError:
                pass  # stored as plain text: show it as a string
    return row


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
    delivery: str | None = None  # only calls whose message a vendor reported in this state (docs/delivery.md)

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("service_name", self.service),
            ("status", self.status),
            ("tenant_id", self.tenant_id),
            ("operation", self.operation),
            ("correlation_id", self.correlation_id),
            ("direction", self.direction),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.delivery is not None:
            clauses.append("correlation_id IN (SELECT correlation_id FROM messages WHERE delivery = ?)")
            params.append(self.delivery)
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
    if offset > MAX_SQL_INT:  # would not even bind as an SQLite integer
        raise InvalidInputError(f"offset must be at most {MAX_SQL_INT}, got {offset}")


def list_logs(db: StateDB, flt: LogFilter, limit: int = DEFAULT_LIMIT, offset: int = 0) -> list[dict[str, Any]]:
    """Newest first, like the reference API."""
    check_limit(limit, offset)
    where, params = flt.where()
    sql = (
        f"SELECT {', '.join(LOG_COLUMNS)} FROM integration_logs{where} "
        "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?"
    )
    rows = db.run(lambda c: c.execute(sql, [*params, limit, offset]).fetchall())
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in rows]


def get_log(db: StateDB, log_id: str) -> dict[str, Any] | None:
    row = db.run(
        lambda c: c.execute(f"SELECT {', '.join(LOG_COLUMNS)} FROM integration_logs WHERE id = ?", (log_id,)).fetchone()
    )
    return dict(zip(LOG_COLUMNS, row, strict=True)) if row else None


METRIC_KEYS = (
    "success_count",
    "failure_count",
    "success_rate",
    "avg_duration_ms",
    "retry_count",
    "p50_ms",
    "p95_ms",
    "p99_ms",
)


def metrics(db: StateDB, service: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The reference design's numbers for one service and period, plus latency percentiles.

    success_count = attempts with status 'success'; failure_count = every other
    attempt; success_rate = success / all * 100 rounded to 2 places (0.0 when
    there were no calls); avg_duration_ms over all attempts, 1 place.
    Only outbound calls count (inbound webhook deliveries are not calls to the vendor).
    Percentiles are nearest-rank (ceil(p * n)) over all attempts' durations;
    ``retry_count`` counts attempts with attempt_number > 1.  Exactly these keys
    (:data:`METRIC_KEYS`): the API's contract.  :func:`metrics_for` adds
    ``total_count`` and the failure breakdowns.  Everything is read from the
    covering index ``ix_logs_service_time_cover`` (no table access).
    """
    full = metrics_for(db, LogFilter(service=service, since=start, until=end, direction="outbound"), breakdown=False)
    return {k: full[k] for k in METRIC_KEYS}


# One pass over the window, grouped by duration: counts, successes and retries per distinct
# duration.  Far fewer rows than attempts reach Python, and the exact nearest-rank percentiles
# fall out of the cumulative counts, so no separate aggregate pass and no Python sort.
_HISTOGRAM = (
    "duration_ms, count(*), count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE attempt_number > 1)"
)
_HTTP_CLASS = (
    "CASE WHEN http_status_code IS NULL THEN 'none' WHEN http_status_code BETWEEN 400 AND 499 THEN '4xx' "
    "WHEN http_status_code BETWEEN 500 AND 599 THEN '5xx' ELSE 'other' END"
)
FAILURE_STATUSES = ("failed", "timeout", "rate_limited", "circuit_open")
PERCENTILES = (("p50_ms", 0.50), ("p95_ms", 0.95), ("p99_ms", 0.99))


_FAILED = "status IN (" + ", ".join(f"'{s}'" for s in FAILURE_STATUSES) + ")"


def _failure_sql(where: str, group: str = "") -> str:
    """Failures broken down by status and HTTP class.

    Naming the failure statuses (rather than ``status <> 'success'``) lets both engines seek them in
    ``ix_logs_service_status_time``, which carries the HTTP status too: a busy service's breakdown
    reads its few failed rows, not every call of the period again.
    """
    joiner = " AND " if where else " WHERE "
    lead = f"{group}, " if group else ""
    return (
        f"SELECT {lead}status, {_HTTP_CLASS}, count(*) FROM integration_logs{where}{joiner}{_FAILED} "
        f"GROUP BY {lead}status, {_HTTP_CLASS}"
    )


def _summarize(histogram: list[tuple[int, int, int, int]], failures: list[tuple[str, str, int]]) -> dict[str, Any]:
    """``histogram`` = (duration_ms, attempts, successes, retries) sorted by duration."""
    total = sum(h[1] for h in histogram)
    success = sum(h[2] for h in histogram)
    duration_sum = sum(h[0] * h[1] for h in histogram)
    by_status = dict.fromkeys(FAILURE_STATUSES, 0)
    by_class = {"4xx": 0, "5xx": 0, "none": 0}
    for status, http_class, count in failures:
        by_status[status] = by_status.get(status, 0) + count
        by_class[http_class] = by_class.get(http_class, 0) + count
    result: dict[str, Any] = {
        "success_count": success,
        "failure_count": total - success,
        "success_rate": round(success * 100.0 / total, 2) if total else 0.0,
        "avg_duration_ms": round(duration_sum / total, 1) if total else 0.0,
        "total_count": total,
        "retry_count": sum(h[3] for h in histogram),
    }
    for label, p in PERCENTILES:
        result[label] = nearest_rank(histogram, total, p)
    result["failures_by_status"] = by_status
    result["failures_by_http_class"] = by_class
    return result


def nearest_rank(histogram: Iterable[Sequence[int]], total: int, p: float) -> int | None:
    """The nearest-rank percentile (the ceil(p * n)-th smallest value) over ``(value, count, ...)`` rows
    sorted by value, ``total`` being the sum of the counts: what every p50/p95/p99 here reports."""
    if not total:
        return None
    rank = max(1, math.ceil(p * total))
    seen, value = 0, None
    for value, count, *_ in histogram:
        seen += count
        if seen >= rank:
            return value
    return value


def metrics_for(db: StateDB, flt: LogFilter, *, breakdown: bool = True) -> dict[str, Any]:
    """:func:`metrics` over any :class:`LogFilter` (tenant, operation, no service = all), plus
    ``total_count``, ``failures_by_status`` and ``failures_by_http_class`` (zeros without ``breakdown``)."""
    where, params = flt.where()

    def read(c: Any) -> tuple[list[tuple[int, int, int, int]], list[tuple[str, str, int]]]:
        c.execute("BEGIN")  # one snapshot: the counts and the breakdown describe the same rows
        try:
            histogram = c.execute(
                f"SELECT {_HISTOGRAM} FROM integration_logs{where} GROUP BY duration_ms ORDER BY duration_ms", params
            ).fetchall()
            any_failed = sum(h[1] for h in histogram) > sum(h[2] for h in histogram)
            failures = c.execute(_failure_sql(where), params).fetchall() if breakdown and any_failed else []
        finally:
            c.execute("COMMIT")
        return histogram, failures

    return _summarize(*db.run(read))


GROUP_COLUMNS = {"service": "service_name", "operation": "operation", "tenant": "tenant_id"}


def metrics_by(db: StateDB, flt: LogFilter, by: str) -> list[dict[str, Any]]:
    """Metrics per service, operation or tenant: ``[{"key": ..., "metrics": {...}}]``, busiest first."""
    column = GROUP_COLUMNS.get(by)
    if column is None:
        raise InvalidInputError(f"cannot group by {by!r} (use one of: {', '.join(GROUP_COLUMNS)})")
    where, params = flt.where()

    def read(c: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        c.execute("BEGIN")
        try:
            rows = c.execute(
                f"SELECT {column}, {_HISTOGRAM} FROM integration_logs{where} GROUP BY {column}, duration_ms ORDER "
                f"BY {column}, duration_ms",
                params,
            ).fetchall()
            failures = c.execute(_failure_sql(where, column), params).fetchall()
        finally:
            c.execute("COMMIT")
        return rows, failures

    rows, failures = db.run(read)
    histograms: dict[Any, list[tuple[int, int, int, int]]] = {}
    for key, *bucket in rows:
        histograms.setdefault(key, []).append(tuple(bucket))
    fails: dict[Any, list[tuple[str, str, int]]] = {}
    for key, status, http_class, count in failures:
        fails.setdefault(key, []).append((status, http_class, count))
    result = [{"key": key, "metrics": _summarize(hist, fails.get(key, []))} for key, hist in histograms.items()]
    result.sort(key=lambda r: (-r["metrics"]["total_count"], str(r["key"])))
    return result


def series(db: StateDB, flt: LogFilter, start: datetime, end: datetime, buckets: int = 24) -> list[dict[str, Any]]:
    """Volume and error rate in ``buckets`` equal slices of [start, end], for the terminal chart.

    One small range query per bucket keeps each on the (service, created_at)
    index instead of sorting the whole window by an expression.
    """
    if buckets < 1 or end <= start:
        return []
    base = replace(flt, since=None, until=None)
    where, params = base.where()
    joiner = " AND " if where else " WHERE "
    step = (end - start) / buckets
    edges = [start + step * i for i in range(buckets)] + [end]
    sql = (
        f"SELECT count(*), count(*) FILTER (WHERE status <> 'success') FROM integration_logs{where}"
        f"{joiner}created_at >= ? AND created_at {{op}} ?"
    )

    def read(c: Any) -> list[dict[str, Any]]:
        out = []
        for i in range(buckets):
            op = "<=" if i == buckets - 1 else "<"
            calls, failures = c.execute(sql.format(op=op), [*params, to_iso(edges[i]), to_iso(edges[i + 1])]).fetchone()
            out.append(
                {
                    "start": to_iso(edges[i]),
                    "end": to_iso(edges[i + 1]),
                    "calls": calls,
                    "failures": failures,
                    "error_rate": round(failures * 100.0 / calls, 2) if calls else 0.0,
                }
            )
        return out

    return db.run(read)


# -- tail: follow new rows by insertion order ----------------------------------------------------
def tail_logs(db: StateDB, flt: LogFilter, n: int) -> tuple[list[dict[str, Any]], int]:
    """The newest ``n`` matching rows (oldest first) and the cursor to follow from.

    Both are read in one snapshot, so a row inserted meanwhile is either shown
    here or returned by the first :func:`logs_after`, never lost or doubled.
    """
    if n < 0:
        raise InvalidInputError(f"-n must be 0 or more, got {n}")
    if n > MAX_SQL_INT:
        raise InvalidInputError(f"-n must be at most {MAX_SQL_INT}, got {n}")
    where, params = flt.where()

    def read(c: Any) -> tuple[list[tuple[Any, ...]], int]:
        c.execute("BEGIN")
        try:
            rows = (
                c.execute(
                    f"SELECT {', '.join(LOG_COLUMNS)} FROM integration_logs{where} ORDER BY created_at DESC, seq "
                    "DESC LIMIT ?",
                    [*params, n],
                ).fetchall()
                if n
                else []
            )
            cursor = c.execute("SELECT coalesce(max(seq), 0) FROM integration_logs").fetchone()[0]
        finally:
            c.execute("COMMIT")
        return rows, cursor

    rows, cursor = db.run(read)
    return [dict(zip(LOG_COLUMNS, r, strict=True)) for r in reversed(rows)], cursor


def logs_after(db: StateDB, flt: LogFilter, cursor: int, batch: int = 500) -> tuple[list[dict[str, Any]], int]:
    """Rows inserted after ``cursor`` (a ``seq``), in insertion order, and the new cursor.

    Walks the rowid range only (``NOT INDEXED``), so each poll costs the new
    rows, not the table.  ``seq`` never goes backwards because purge always
    keeps the newest row; if someone emptied the table by hand anyway, the
    cursor restarts from the new rows.
    """
    where, params = flt.where()
    joiner = " AND " if where else " WHERE "
    sql = (
        f"SELECT seq, {', '.join(LOG_COLUMNS)} FROM integration_logs NOT INDEXED{where}"
        f"{joiner}seq > ? ORDER BY seq LIMIT ?"
    )

    def read(c: Any) -> tuple[list[tuple[Any, ...]], int]:
        c.execute("BEGIN")  # one snapshot for the rows and max(seq)
        try:
            rows = c.execute(sql, [*params, cursor, batch]).fetchall()
            if rows:
                return rows, rows[-1][0]
            top = c.execute("SELECT coalesce(max(seq), 0) FROM integration_logs").fetchone()[0]
            if top < cursor:  # the table was emptied behind our back: rowids restarted
                return c.execute(sql, [*params, 0, batch]).fetchall(), 0
            # nothing matched up to `top`: the next poll starts there instead of rescanning
            return [], top
        finally:
            c.execute("COMMIT")

    rows, new_cursor = db.run(read)
    if rows:
        new_cursor = rows[-1][0]
    return [dict(zip(LOG_COLUMNS, r[1:], strict=True)) for r in rows], new_cursor


# -- status: healthy / degraded / down (rules in store/health.py, shared with the API) -------------
def service_status(
    db: StateDB, settings: Any, now: datetime | None = None, services: list[str] | None = None
) -> dict[str, Any]:
    """``connectorctl status``'s body: :func:`connectorctl.store.health.assess` in the CLI's shape.

    Per service the reference's ``status``, ``success_rate`` and ``avg_duration_ms``
    (``null`` with no calls in the window) plus calls, failures, attempts and
    their own success rate, p95, circuit state and consecutive failures;
    ``overall`` is the worst verdict; ``audit_spool.rows`` log rows wait for
    the database in the local spool.  Calls and ``success_rate`` count logical
    calls (a send retried to success is one success); the duration figures are
    per attempt.
    """
    from connectorctl.outbox.store import depth
    from connectorctl.store.health import assess

    report = assess(db, settings, now, services)
    out = {
        s.service: {
            "status": s.status,
            "success_rate": s.success_rate,
            "avg_duration_ms": s.avg_duration_ms,
            "calls": s.calls,
            "failure_count": s.failure_count,
            "attempts": s.attempts,
            "attempt_success_rate": s.attempt_success_rate,
            "p95_ms": s.p95_ms,
            "circuit_state": s.circuit_state,
            "consecutive_failures": s.consecutive_failures,
        }
        for s in report.services
    }
    return {
        "services": out,
        "timestamp": to_iso(report.now),
        "window_minutes": report.window_minutes,
        "overall": report.overall,
        "outbox": depth(db, report.now.timestamp()),
        "audit_spool": spooled(db, settings),
    }


def spooled(db: StateDB, settings: Any) -> dict[str, Any]:
    """The audit spool's path, how many of this database's log rows wait in it (``rows``: 0 is the norm) and
    ``error`` when the file cannot be read."""
    from connectorctl.store.spool import AuditSpool, spool_path

    return AuditSpool(spool_path(settings)).summary(db.label)


def purge_logs(
    db: StateDB,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = 5000,
    vacuum: bool = False,
) -> dict[str, Any]:
    """Delete integration-log rows older than ``days`` days; returns what was (or would be) deleted.

    The reference ``purgeOldLogs(retentionDays): int`` for CLI, cron and API.
    Deletes in ``batch_size`` batches, each its own short write transaction, so
    concurrent writers wait milliseconds, never fail; safe to run twice at
    once.  See :mod:`connectorctl.store.retention` for the details.
    """
    from connectorctl.store.retention import purge

    return purge(db, days, now=now, dry_run=dry_run, batch_size=batch_size, vacuum=vacuum)
