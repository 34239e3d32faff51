"""Prometheus exposition of what the integration log and the circuit table know.

Calls happen in other processes (CLI, ERP workers, other hosts), so the numbers
come from the database, not from in-process counters: the call totals are kept
at write time (``store/totals.py``, a few hundred rows), so a scrape costs the
same on a log of a thousand rows or a hundred million, and every server
process, restart and host shows the same numbers.

Metric names (all prefixed ``connectorctl_``):

* ``calls_total{service,status}``                    logged attempts by outcome
* ``call_duration_seconds{service}``                  latency histogram of attempts
* ``rate_limit_rejections_total{service,source}``     ``local`` quota vs ``vendor`` 429
* ``circuit_state{service,state}``                    1 for the current state, 0 for the others
* ``log_rows_scraped_total``                          outbound log rows counted in all
* ``outbox_depth`` / ``outbox_oldest_age_seconds``    messages still to deliver, and how long the oldest has waited
* ``outbox_messages{status}``                         outbox messages per status (``dead``, ``uncertain`` ...)
* ``audit_spool_rows``                                log rows waiting in this host's audit spool for the database
                                                      (absent while the spool file cannot be read)
* ``audit_spool_readable``                            1, or 0 while the spool file cannot be read (alert on it)
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from connectorctl.domain.values import CircuitState
from connectorctl.store import totals
from connectorctl.store.db import StateDB
from connectorctl.store.health import configured_services


def call_families(groups: Iterable[totals.Group]) -> Iterator[Metric]:
    calls: dict[tuple[str, str], int] = {}
    buckets: dict[str, list[int]] = {}
    duration_sum_ms: dict[str, int] = {}
    rejections: dict[tuple[str, str], int] = {}
    for service, status, bucket, local, count, total_ms in groups:
        calls[(service, status)] = calls.get((service, status), 0) + count
        buckets.setdefault(service, [0] * (len(totals.BUCKETS_MS) + 1))[bucket] += count
        duration_sum_ms[service] = duration_sum_ms.get(service, 0) + total_ms
        if status == "rate_limited":
            key = (service, "local" if local else "vendor")
            rejections[key] = rejections.get(key, 0) + count
    family = CounterMetricFamily(
        "connectorctl_calls", "Vendor call attempts recorded in the integration log.", labels=["service", "status"]
    )
    for (service, status), count in sorted(calls.items()):
        family.add_metric([service, status], count)
    yield family
    hist = HistogramMetricFamily(
        "connectorctl_call_duration_seconds", "Duration of vendor call attempts.", labels=["service"]
    )
    for service in sorted(buckets):
        cumulative, running = [], 0
        for i, count in enumerate(buckets[service]):
            running += count
            bound = "+Inf" if i == len(totals.BUCKETS_MS) else repr(totals.BUCKETS_MS[i] / 1000)
            cumulative.append((bound, running))
        hist.add_metric([service], cumulative, duration_sum_ms[service] / 1000)
    yield hist
    rejected = CounterMetricFamily(
        "connectorctl_rate_limit_rejections",
        "Calls refused by a rate limit: our own quota (local) or the vendor's 429 (vendor).",
        labels=["service", "source"],
    )
    for (service, source), count in sorted(rejections.items()):
        rejected.add_metric([service, source], count)
    yield rejected
    yield CounterMetricFamily(
        "connectorctl_log_rows_scraped",
        "Outbound integration-log rows counted in these metrics.",
        value=sum(calls.values()),
    )


def circuit_family(circuits: dict[str, str], services: Iterable[str]) -> Metric:
    gauge = GaugeMetricFamily(
        "connectorctl_circuit_state",
        "Circuit breaker state per service (1 = current state).",
        labels=["service", "state"],
    )
    for service in sorted(set(services) | set(circuits)):
        current = circuits.get(service, CircuitState.CLOSED.value)
        for state in CircuitState:
            gauge.add_metric([service, state.value], 1.0 if state.value == current else 0.0)
    return gauge


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def scrape(db: StateDB, settings: Any) -> bytes:
    """One scrape as a read-worker function: the exposition text."""
    from prometheus_client import generate_latest

    def read(conn: Any) -> tuple[list[totals.Group], dict[str, str]]:
        return totals.read(conn), dict(conn.execute("SELECT service_name, state FROM circuit_state").fetchall())

    groups, circuits = db.run(read)
    families = [
        *call_families(groups),
        circuit_family(circuits, configured_services(settings)),
        *outbox_families(db),
        *spool_families(db, settings),
    ]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families))
    return generate_latest(registry)


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


def spool_families(db: StateDB, settings: Any) -> Iterator[Metric]:
    """A spool file that cannot be read costs its own gauges only: the call and circuit metrics still answer."""
    from connectorctl.store.queries import spooled

    spool = spooled(db, settings)
    if spool["rows"] is not None:
        yield GaugeMetricFamily(
            "connectorctl_audit_spool_rows",
            "Integration-log rows waiting in the local audit spool for the database to take them (0 is the norm).",
            value=spool["rows"],
        )
    yield GaugeMetricFamily(
        "connectorctl_audit_spool_readable",
        "1 when the local audit spool file can be read, 0 when it cannot (its rows are then unknown).",
        value=0 if spool["error"] else 1,
    )
