"""Per-service quotas shared by every process (and, on PostgreSQL, every host) through the state database.

Each window ("10 per 1 s", "10000 per 86400 s") is a fixed, epoch-aligned
counter row.  Tokens are taken with a conditional write inside one
``BEGIN IMMEDIATE`` transaction, so check-and-increment is atomic across
processes and a quota is never exceeded within any of its windows.  (Fixed
windows may admit up to 2x the limit across a window boundary: the semantics
vendors use for their own daily quotas.)

High quotas would make that write the most expensive step of every call (on
PostgreSQL a network round trip), so a process reserves a small lease of tokens
at once (1 % of the smallest limit, 1 token for small limits) and spends it
locally until the window ends.
Reserved tokens count against the quota, so leases can never over-admit; at
worst a process leaves part of its lease unused when its window rolls over.
"""

from __future__ import annotations

import random
from typing import Iterator, NamedTuple, Sequence

from connectorctl.domain.values import RateLimitWindow
from connectorctl.errors import LocalRateLimitedError
from connectorctl.resilience.clock import Clock
from connectorctl.store.db import StateDB

LEASE_FRACTION = 0.01
# A process that computed "now" before waiting for the write lock may arrive with
# an older window than the row's: it must be refused, never move the window back.
_TAKE_ONE = (
    "INSERT INTO rate_limit_buckets (service_name, window_seconds, window_start, count) VALUES (?, ?, ?, 1) "
    "ON CONFLICT(service_name, window_seconds) DO UPDATE SET "
    "count = CASE WHEN excluded.window_start > rate_limit_buckets.window_start THEN 1 ELSE rate_limit_buckets.count "
    "+ 1 END, "
    "window_start = excluded.window_start "
    "WHERE excluded.window_start > rate_limit_buckets.window_start "
    "OR (excluded.window_start = rate_limit_buckets.window_start AND rate_limit_buckets.count < ?) "
    "RETURNING count"
)


class _Lease(NamedTuple):
    """Tokens reserved for one set of windows; ``next(tokens)`` is atomic under the GIL."""

    starts: tuple[float, ...]
    tokens: Iterator[int]


class SqliteRateLimiter:
    def __init__(self, db: StateDB, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._leases: dict[str, _Lease] = {}

    @staticmethod
    def lease_size(windows: Sequence[RateLimitWindow]) -> int:
        return max(1, int(min(w.limit for w in windows) * LEASE_FRACTION))

    def try_acquire(self, service: str, windows: Sequence[RateLimitWindow]) -> float:
        """Take one token from every window; 0.0 if admitted, else seconds to wait."""
        now = self.clock.time()
        starts = tuple([(now // w.per_seconds) * w.per_seconds for w in windows])
        lease = self._leases.get(service)
        if lease is not None and lease.starts == starts and next(lease.tokens, None) is not None:
            return 0.0
        size = self.lease_size(windows)
        if size == 1 and len(windows) == 1:
            w, start = windows[0], starts[0]
            row = self.db.run(lambda c: c.execute(_TAKE_ONE, (service, w.per_seconds, start, w.limit)).fetchone())
            return 0.0 if row is not None else self._wait(windows, starts, now, [0])
        granted, full = self._reserve(service, windows, starts, size)
        if granted == 0:
            return self._wait(windows, starts, now, full)
        self._leases[service] = _Lease(starts, iter(range(granted - 1)))
        return 0.0

    def _reserve(
        self, service: str, windows: Sequence[RateLimitWindow], starts: tuple[float, ...], size: int
    ) -> tuple[int, list[int]]:
        """Reserve up to ``size`` tokens in every window at once; returns (granted, full windows)."""
        with self.db.write() as conn:
            free = []
            for w, start in zip(windows, starts, strict=True):
                row = conn.execute(
                    "SELECT window_start, count FROM rate_limit_buckets WHERE service_name=? AND window_seconds=?",
                    (service, w.per_seconds),
                ).fetchone()
                if row is None or row[0] < start:
                    free.append(w.limit)
                else:  # same window, or a newer one than our clock reading: then retry later
                    free.append(w.limit - row[1] if row[0] == start else 0)
            granted = max(0, min(size, *free))
            if granted:
                for w, start in zip(windows, starts, strict=True):
                    conn.execute(
                        "INSERT INTO rate_limit_buckets (service_name, window_seconds, window_start, count) VALUES "
                        "(?, ?, ?, ?) "
                        "ON CONFLICT(service_name, window_seconds) DO UPDATE SET "
                        "count = CASE WHEN excluded.window_start > rate_limit_buckets.window_start THEN excluded.count "
                        "ELSE rate_limit_buckets.count + excluded.count END, "
                        "window_start = excluded.window_start",
                        (service, w.per_seconds, start, granted),
                    )
        return granted, [i for i, f in enumerate(free) if f <= 0]

    @staticmethod
    def _wait(windows: Sequence[RateLimitWindow], starts: tuple[float, ...], now: float, full: Sequence[int]) -> float:
        return max(max(starts[i] + windows[i].per_seconds - now for i in full), 0.001)

    def acquire(self, service: str, windows: Sequence[RateLimitWindow], max_wait_seconds: float) -> float:
        """Block until admitted or until ``max_wait_seconds`` would be exceeded.

        Returns the seconds spent waiting; raises :class:`LocalRateLimitedError`
        with ``retry_after_seconds`` when the deadline cannot be met.
        """
        if not windows or self.try_acquire(service, windows) == 0.0:
            return 0.0
        started = self.clock.monotonic()
        while True:
            wait = self.try_acquire(service, windows)
            if wait == 0.0:
                return self.clock.monotonic() - started
            waited = self.clock.monotonic() - started
            if waited + wait > max_wait_seconds:
                raise LocalRateLimitedError(
                    f"{service}: local rate limit reached, next slot in {wait:.2f} s",
                    service=service,
                    retry_after_seconds=round(wait, 3),
                )
            # A little jitter so that waiting processes do not stampede the new window.
            self.clock.sleep(wait + random.uniform(0, min(0.01, wait)))

    def usage(self, service: str) -> list[tuple[float, float, int]]:
        """(window_seconds, window_start, tokens taken) rows for one service."""
        return self.db.run(
            lambda c: c.execute(
                "SELECT window_seconds, window_start, count FROM rate_limit_buckets WHERE service_name=? ORDER BY "
                "window_seconds",
                (service,),
            ).fetchall()
        )
