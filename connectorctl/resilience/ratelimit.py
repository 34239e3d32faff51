"""Per-service quotas shared by every process through SQLite.

Each window ("10 per 1 s", "10000 per 86400 s") is a fixed, epoch-aligned
counter row.  Admission is one conditional UPSERT ... RETURNING per window, and
all windows of a service are taken in one ``BEGIN IMMEDIATE`` transaction, so
the check and the increment are atomic across processes: a quota is never
exceeded within any of its windows.  (Fixed windows may admit up to 2x the
limit across a window boundary, the same semantics vendors use for daily
quotas.)  Nothing is stored when a service has no quota configured.
"""

from __future__ import annotations

import math
import random
import sqlite3
from typing import Sequence

from connectorctl.domain.values import RateLimitWindow
from connectorctl.errors import LocalRateLimitedError
from connectorctl.resilience.clock import Clock
from connectorctl.store.db import StateDB

_TAKE = (
    "INSERT INTO rate_limit_buckets (service_name, window_seconds, window_start, count) VALUES (?, ?, ?, 1) "
    "ON CONFLICT(service_name, window_seconds) DO UPDATE SET "
    "count = CASE WHEN window_start = excluded.window_start THEN count + 1 ELSE 1 END, "
    "window_start = excluded.window_start "
    "WHERE window_start != excluded.window_start OR count < ? "
    "RETURNING count"
)


class _Refused(Exception):
    pass


class SqliteRateLimiter:
    def __init__(self, db: StateDB, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def try_acquire(self, service: str, windows: Sequence[RateLimitWindow]) -> float:
        """Take one token from every window; 0.0 if admitted, else seconds to wait."""
        now = self.clock.time()
        starts = [math.floor(now / w.per_seconds) * w.per_seconds for w in windows]
        if len(windows) == 1:
            w, start = windows[0], starts[0]
            row = self.db.run(lambda c: c.execute(_TAKE, (service, w.per_seconds, start, w.limit)).fetchone())
            return 0.0 if row is not None else max(start + w.per_seconds - now, 0.001)
        wait = 0.0
        try:
            with self.db.write() as conn:
                for w, start in zip(windows, starts):
                    if conn.execute(_TAKE, (service, w.per_seconds, start, w.limit)).fetchone() is None:
                        wait = max(wait, start + w.per_seconds - now, 0.001)
                if wait:
                    raise _Refused  # roll back the windows that did admit
        except _Refused:
            pass
        return wait

    def acquire(self, service: str, windows: Sequence[RateLimitWindow], max_wait_seconds: float) -> float:
        """Block until admitted or until ``max_wait_seconds`` would be exceeded.

        Returns the seconds spent waiting; raises :class:`LocalRateLimitedError`
        with ``retry_after_seconds`` when the deadline cannot be met.
        """
        if not windows:
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
        try:
            return self.db.run(lambda c: c.execute(
                "SELECT window_seconds, window_start, count FROM rate_limit_buckets WHERE service_name=? ORDER BY window_seconds", (service,)
            ).fetchall())
        except sqlite3.Error:
            return []
