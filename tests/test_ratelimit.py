"""Rate limiter: waits up to its deadline, then refuses; a shared quota is never exceeded (on SQLite and on PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Iterator

import pytest

from connectorctl.domain.values import RateLimitWindow
from connectorctl.errors import LocalRateLimitedError
from connectorctl.resilience.clock import FakeClock
from connectorctl.resilience.ratelimit import SqliteRateLimiter
from connectorctl.store.db import StateDB
from tests.conftest import ROOT


@pytest.fixture
def db(state_target: Path | str) -> Iterator[StateDB]:
    with closing(StateDB(state_target)) as db:
        yield db


def test_waits_for_the_next_window_then_refuses_past_the_deadline(db: StateDB) -> None:
    clock = FakeClock(start=1000.0)
    limiter = SqliteRateLimiter(db, clock)
    windows = [RateLimitWindow(3, 1.0)]
    for _ in range(3):
        assert limiter.acquire("svc", windows, max_wait_seconds=0) == 0.0
    waited = limiter.acquire("svc", windows, max_wait_seconds=2.0)  # the 4th waits for the next second
    assert 1.0 <= waited <= 1.02
    for _ in range(2):
        limiter.acquire("svc", windows, max_wait_seconds=0)
    with pytest.raises(LocalRateLimitedError) as info:
        limiter.acquire("svc", windows, max_wait_seconds=0.5)
    assert 0 < info.value.retry_after_seconds <= 1.0
    assert info.value.counts_against_circuit is False


def test_every_window_is_enforced(db: StateDB) -> None:
    clock = FakeClock(start=86400.0 * 20000)
    limiter = SqliteRateLimiter(db, clock)
    windows = [RateLimitWindow(2, 1.0), RateLimitWindow(5, 86400.0)]
    admitted = 0
    for _ in range(20):
        if limiter.try_acquire("svc", windows) == 0.0:
            admitted += 1
        clock.advance(0.4)
    assert admitted == 5  # the daily window binds after 5, although the per-second one would allow more
    wait = limiter.try_acquire("svc", windows)
    assert wait > 80000  # until the day ends


def test_quota_state_is_per_service(db: StateDB) -> None:
    limiter = SqliteRateLimiter(db, FakeClock())
    windows = [RateLimitWindow(1, 60.0)]
    assert limiter.try_acquire("a", windows) == 0.0
    assert limiter.try_acquire("b", windows) == 0.0
    assert limiter.try_acquire("a", windows) > 0


def test_large_quotas_lease_tokens_without_over_admitting(db: StateDB) -> None:
    clock = FakeClock(start=5000.0)
    first, second = SqliteRateLimiter(db, clock), SqliteRateLimiter(db, clock)
    windows = [RateLimitWindow(1000, 60.0)]
    admitted = 0
    for limiter in [first, second] * 700:
        admitted += limiter.try_acquire("svc", windows) == 0.0
    assert admitted == 1000
    assert first.usage("svc")[0][2] == 1000


_HAMMER = """
import json, sys, time
from connectorctl.domain.values import RateLimitWindow
from connectorctl.resilience.clock import SystemClock
from connectorctl.resilience.ratelimit import SqliteRateLimiter
from connectorctl.store.db import StateDB
class RecordingClock(SystemClock):
    last = 0.0
    def time(self):
        self.last = time.time()
        return self.last
clock = RecordingClock()
limiter = SqliteRateLimiter(StateDB(sys.argv[1]), clock)
windows = [RateLimitWindow(int(sys.argv[2]), float(sys.argv[3]))]
limiter.usage("shared")  # connected
print("ready", flush=True)
start, end = map(float, sys.stdin.readline().split())
time.sleep(max(0.0, start - time.time()))
admitted = []
while time.time() < end:
    if limiter.try_acquire("shared", windows) == 0.0:
        admitted.append(clock.last)  # the instant the limiter judged
print(json.dumps(admitted))
"""


@pytest.mark.parametrize(("engine", "limit"), [("sqlite", 5), ("sqlite", 400), ("postgresql", 4000)], indirect=["engine"])
def test_quota_shared_by_two_processes_is_never_exceeded(state_target: Path | str, limit: int) -> None:
    """Token by token, and with leases (of 40 tokens on PostgreSQL, whose round trips a busy machine slows down;
    token by token there is test_scale_out's four hosts)."""
    db_path = state_target
    StateDB(db_path).close()
    per = 0.5
    procs = [subprocess.Popen([sys.executable, "-c", _HAMMER, str(db_path), str(limit), str(per)], cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    assert [p.stdout.readline().strip() for p in procs if p.stdout] == ["ready", "ready"]
    start = time.time() + 0.2
    end = start + 2.0
    results = [p.communicate(f"{start} {end}\n", timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [r[1] for r in results]
    stamps = [t for out, _ in results for t in json.loads(out)]
    per_window = Counter(int(t // per) for t in stamps)
    assert per_window and max(per_window.values()) <= limit
    full_windows = [n for w, n in per_window.items() if start + per <= w * per and (w + 1) * per <= end - per]
    # Together they can use the whole quota: leases strand no tokens (one full window suffices, since a loaded
    # machine may slow the round trips of another window below the quota).
    assert full_windows and max(full_windows) >= limit * 0.9, per_window
