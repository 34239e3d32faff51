"""Prometheus exposition of what the integration log and the circuit table know.

Calls happen in other processes (CLI, ERP workers), so the numbers come from
the shared SQLite file, not from in-process counters.  The collector folds the
log incrementally by ``seq`` (the rowid): the first scrape aggregates every row
once, later scrapes read only rows added since, so a scrape stays cheap on a
large log and counters only go up (a purge does not lower them).

Metric names (all prefixed ``connectorctl_``):

* ``calls_total{service,status}``                    logged attempts by outcome
* ``call_duration_seconds{service}``                  latency histogram of attempts
* ``rate_limit_rejections_total{service,source}``     ``local`` quota vs ``vendor`` 429
* ``circuit_state{service,state}``                    1 for the current state, 0 for the others
* ``log_rows_scraped_total``                          rows folded so far (a liveness signal)
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from connectorctl.domain.values import CircuitState
from connectorctl.store.db import StateDB

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
_BUCKET_SQL = "CASE " + " ".join(f"WHEN duration_ms <= {ms} THEN {i}" for i, ms in enumerate(BUCKETS_MS)) + f" ELSE {len(BUCKETS_MS)} END"
_FOLD_SQL = (
    f"SELECT service_name, status, {_BUCKET_SQL} AS bucket, (status = 'rate_limited' AND http_status_code IS NULL) AS local, "
    "count(*), coalesce(sum(duration_ms), 0) FROM integration_logs WHERE seq > ? AND seq <= ? AND direction = 'outbound' "
    "GROUP BY service_name, status, bucket, local"
)


class LogCollector(Collector):
    def __init__(self, db_factory: Callable[[], StateDB], services: Callable[[], list[str]]) -> None:
        self._db = db_factory
        self._services = services
        self._lock = threading.Lock()
        self._reset(0)

    def _reset(self, seq: int) -> None:
        self.last_seq = seq
        self.rows = 0
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS_MS) + 1))
        self.duration_sum_ms: dict[str, int] = defaultdict(int)
        self.rejections: dict[tuple[str, str], int] = defaultdict(int)

    def refresh(self) -> None:
        """Fold rows added since the last scrape into the running totals."""
        db = self._db()
        with self._lock:
            top = db.run(lambda c: c.execute("SELECT coalesce(max(seq), 0) FROM integration_logs").fetchone()[0])
            if top < self.last_seq:  # the file was replaced or emptied: start over (a counter reset)
                self._reset(0)
            if top == self.last_seq:
                return
            rows = db.run(lambda c: c.execute(_FOLD_SQL, (self.last_seq, top)).fetchall())
            for service, status, bucket, local, count, total_ms in rows:
                self.calls[(service, status)] += count
                self.buckets[service][bucket] += count
                self.duration_sum_ms[service] += total_ms
                self.rows += count
                if status == "rate_limited":
                    self.rejections[(service, "local" if local else "vendor")] += count
            self.last_seq = top

    def collect(self) -> Iterator[Metric]:
        self.refresh()
        db = self._db()
        with self._lock:
            calls = CounterMetricFamily("connectorctl_calls", "Vendor call attempts recorded in the integration log.", labels=["service", "status"])
            for (service, status), count in sorted(self.calls.items()):
                calls.add_metric([service, status], count)
            hist = HistogramMetricFamily("connectorctl_call_duration_seconds", "Duration of vendor call attempts.", labels=["service"])
            for service in sorted(self.buckets):
                cumulative, running = [], 0
                for i, count in enumerate(self.buckets[service]):
                    running += count
                    bound = "+Inf" if i == len(BUCKETS_MS) else repr(BUCKETS_MS[i] / 1000)
                    cumulative.append((bound, running))
                hist.add_metric([service], cumulative, self.duration_sum_ms[service] / 1000)
            rejected = CounterMetricFamily(
                "connectorctl_rate_limit_rejections", "Calls refused by a rate limit: our own quota (local) or the vendor's 429 (vendor).",
                labels=["service", "source"],
            )
            for (service, source), count in sorted(self.rejections.items()):
                rejected.add_metric([service, source], count)
            scraped = CounterMetricFamily("connectorctl_log_rows_scraped", "Integration-log rows folded into these metrics.")
            scraped.add_metric([], self.rows)
        yield calls
        yield hist
        yield rejected
        yield scraped
        yield self._circuits(db)

    def _circuits(self, db: StateDB) -> Metric:
        stored = dict(db.run(lambda c: c.execute("SELECT service_name, state FROM circuit_state").fetchall()))
        gauge = GaugeMetricFamily("connectorctl_circuit_state", "Circuit breaker state per service (1 = current state).", labels=["service", "state"])
        for service in sorted(set(self._services()) | set(stored)):
            current = stored.get(service, CircuitState.CLOSED.value)
            for state in CircuitState:
                gauge.add_metric([service, state.value], 1.0 if state.value == current else 0.0)
        return gauge


def build_registry(db_factory: Callable[[], StateDB], services: Callable[[], list[str]]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LogCollector(db_factory, services))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(registry)
