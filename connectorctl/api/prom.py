"""Prometheus exposition of what the integration log and the circuit table know.

Calls happen in other processes (CLI, ERP workers), so the numbers come from
the shared SQLite file, not from in-process counters.  Each scrape folds the log
incrementally by ``seq`` (the rowid): the first aggregates every row once (and
what purges deleted, ``store/totals.py``), later ones read only rows added
since, so a scrape stays cheap on a large log, counters only go up, and every
server process and every restart shows the same numbers.  A scrape
(:func:`scrape`) runs wherever the API's reads run; the server keeps the one
running :class:`LogTotals` and hands it to whichever worker folds next.

Metric names (all prefixed ``connectorctl_``):

* ``calls_total{service,status}``                    logged attempts by outcome
* ``call_duration_seconds{service}``                  latency histogram of attempts
* ``rate_limit_rejections_total{service,source}``     ``local`` quota vs ``vendor`` 429
* ``circuit_state{service,state}``                    1 for the current state, 0 for the others
* ``log_rows_scraped_total``                          rows folded so far (a liveness signal)
* ``outbox_depth`` / ``outbox_oldest_age_seconds``    messages still to deliver, and how long the oldest has waited
* ``outbox_messages{status}``                         outbox messages per status (``dead``, ``uncertain`` ...)
* ``audit_spool_rows``                                log rows waiting in this host's audit spool for the database
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from connectorctl.domain.values import CircuitState
from connectorctl.errors import StateStoreError
from connectorctl.store import totals
from connectorctl.store.db import StateDB
from connectorctl.store.health import configured_services

CHECKPOINT_EVERY_SECONDS = 60.0


class LogTotals:
    """Running totals of the outbound calls logged so far (they only go up).  Plain dicts: it travels to read workers.

    The first fold counts what ``logs purge`` deleted (``store/totals.py``) and
    every row there is; later folds only rows added since.  Folds are saved in
    the database (at most every :data:`CHECKPOINT_EVERY_SECONDS`), so a server
    that starts (or restarts, or is one more worker) resumes from the last saved
    fold instead of reading the whole log: on a million rows that first pass
    costs seconds of CPU.  A saved fold is used only if no purge has counted
    rows since it was taken: rows newer than it might be among them.
    """

    def __init__(self) -> None:
        self.last_seq = 0
        self.based = False  # the purged totals are counted in
        self.purged = 0  # log_totals_purged's count when last folded
        self.rows = 0
        self.calls: dict[tuple[str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.duration_sum_ms: dict[str, int] = {}
        self.rejections: dict[tuple[str, str], int] = {}
        self.saved_seq = 0
        self.saved_at = float("-inf")

    def fold(self, db: StateDB) -> "LogTotals":
        """These totals plus the rows added since ``last_seq``, saved for the next server when due.

        A log that shrank below ``last_seq`` starts over (a counter reset).
        """
        folded = db.run(self._fold)
        now = time.monotonic()
        if folded.last_seq > folded.saved_seq and now - folded.saved_at >= CHECKPOINT_EVERY_SECONDS:
            try:
                with db.write() as conn:
                    totals.save_checkpoint(conn, folded.last_seq, folded.purged, folded.to_json())
                folded.saved_seq, folded.saved_at = folded.last_seq, now
            except StateStoreError:  # a read-only file: servers keep folding from the start, nothing else changes
                pass
        return folded

    def _fold(self, conn: Any) -> "LogTotals":
        conn.execute("BEGIN")  # one snapshot: a purge between two reads would count its rows twice or never
        try:
            top = conn.execute("SELECT coalesce(max(seq), 0) FROM integration_logs").fetchone()[0]
            purged = totals.purged_count(conn)
            folded = self if top >= self.last_seq else LogTotals()
            if not folded.based:
                folded = _resume(totals.checkpoint(conn), top, purged) or folded
            groups = [] if folded.based else totals.purged(conn)
            if top > folded.last_seq:
                groups += totals.since(conn, folded.last_seq, top)
        finally:
            conn.execute("COMMIT")
        for service, status, bucket, local, count, total_ms in groups:
            folded.calls[(service, status)] = folded.calls.get((service, status), 0) + count
            folded.buckets.setdefault(service, [0] * (len(totals.BUCKETS_MS) + 1))[bucket] += count
            folded.duration_sum_ms[service] = folded.duration_sum_ms.get(service, 0) + total_ms
            folded.rows += count
            if status == "rate_limited":
                key = (service, "local" if local else "vendor")
                folded.rejections[key] = folded.rejections.get(key, 0) + count
        folded.last_seq, folded.based, folded.purged = top, True, purged
        return folded

    def to_json(self) -> str:
        return json.dumps(
            {
                "rows": self.rows,
                "calls": [[service, status, n] for (service, status), n in sorted(self.calls.items())],
                "buckets": self.buckets,
                "duration_sum_ms": self.duration_sum_ms,
                "rejections": [[service, source, n] for (service, source), n in sorted(self.rejections.items())],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, last_seq: int) -> "LogTotals":
        data = json.loads(text)
        restored = cls()
        restored.rows = int(data["rows"])
        restored.calls = {(service, status): int(n) for service, status, n in data["calls"]}
        restored.buckets = {service: [int(n) for n in counts] for service, counts in data["buckets"].items()}
        restored.duration_sum_ms = {service: int(ms) for service, ms in data["duration_sum_ms"].items()}
        restored.rejections = {(service, source): int(n) for service, source, n in data["rejections"]}
        if any(len(counts) != len(totals.BUCKETS_MS) + 1 for counts in restored.buckets.values()):
            raise ValueError("saved with other latency buckets")
        restored.last_seq = restored.saved_seq = last_seq
        restored.based = True
        return restored

    def families(self, circuits: dict[str, str], services: Iterable[str]) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "connectorctl_calls", "Vendor call attempts recorded in the integration log.", labels=["service", "status"]
        )
        for (service, status), count in sorted(self.calls.items()):
            calls.add_metric([service, status], count)
        yield calls
        hist = HistogramMetricFamily(
            "connectorctl_call_duration_seconds", "Duration of vendor call attempts.", labels=["service"]
        )
        for service in sorted(self.buckets):
            cumulative, running = [], 0
            for i, count in enumerate(self.buckets[service]):
                running += count
                bound = "+Inf" if i == len(totals.BUCKETS_MS) else repr(totals.BUCKETS_MS[i] / 1000)
                cumulative.append((bound, running))
            hist.add_metric([service], cumulative, self.duration_sum_ms[service] / 1000)
        yield hist
        rejected = CounterMetricFamily(
            "connectorctl_rate_limit_rejections",
            "Calls refused by a rate limit: our own quota (local) or the vendor's 429 (vendor).",
            labels=["service", "source"],
        )
        for (service, source), count in sorted(self.rejections.items()):
            rejected.add_metric([service, source], count)
        yield rejected
        scraped = CounterMetricFamily(
            "connectorctl_log_rows_scraped", "Integration-log rows folded into these metrics."
        )
        scraped.add_metric([], self.rows)
        yield scraped
        gauge = GaugeMetricFamily(
            "connectorctl_circuit_state",
            "Circuit breaker state per service (1 = current state).",
            labels=["service", "state"],
        )
        for service in sorted(set(services) | set(circuits)):
            current = circuits.get(service, CircuitState.CLOSED.value)
            for state in CircuitState:
                gauge.add_metric([service, state.value], 1.0 if state.value == current else 0.0)
        yield gauge


def _resume(saved: tuple[int, int, str] | None, top: int, purged: int) -> LogTotals | None:
    """The saved fold, if it still describes this log: nothing purged since, and not ahead of it."""
    if saved is None:
        return None
    last_seq, purged_then, state = saved
    if purged_then != purged or last_seq > top:
        return None
    try:
        return LogTotals.from_json(state, last_seq)
    except (ValueError, KeyError, TypeError, AttributeError):  # unreadable: fold from the start
        return None


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def scrape(db: StateDB, settings: Any, totals: LogTotals) -> tuple[LogTotals, bytes]:
    """One scrape as a read-worker function: the totals folded forward, and the exposition text."""
    from prometheus_client import generate_latest

    totals = totals.fold(db)
    circuits = dict(db.run(lambda c: c.execute("SELECT service_name, state FROM circuit_state").fetchall()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        _Snapshot(
            [
                *totals.families(circuits, configured_services(settings)),
                *outbox_families(db),
                spool_family(db, settings),
            ]
        )
    )
    return totals, generate_latest(registry)


def outbox_families(db: StateDB) -> Iterator[Metric]:
    import time

    from connectorctl.outbox.store import depth

    now = depth(db, time.time())
    yield GaugeMetricFamily(
        "connectorctl_outbox_depth",
        "Outbox messages still to deliver (queued, retrying, being sent).",
        value=now["depth"],
    )
    yield GaugeMetricFamily(
        "connectorctl_outbox_oldest_age_seconds",
        "Age of the oldest outbox message still to deliver (0: none).",
        value=now["oldest_age_seconds"] or 0.0,
    )
    per_status = GaugeMetricFamily("connectorctl_outbox_messages", "Outbox messages per status.", labels=["status"])
    for status, count in now["by_status"].items():
        per_status.add_metric([status], count)
    yield per_status


def spool_family(db: StateDB, settings: Any) -> Metric:
    from connectorctl.store.queries import spooled

    return GaugeMetricFamily(
        "connectorctl_audit_spool_rows",
        "Integration-log rows waiting in the local audit spool for the database to take them (0 is the norm).",
        value=spooled(db, settings)["rows"],
    )
