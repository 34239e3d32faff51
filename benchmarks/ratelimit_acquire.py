"""Cost of one rate-limit acquire, shared through SQLite.

Two shapes: a small quota (10/s style) where every acquire is one conditional
UPSERT in SQLite, and a large one where a process leases 1 % of the quota per
write.  For scale: pyrate-limiter's SQLite bucket with its file lock (the only
exact cross-process mode) measured 0.4-1.9 ms per acquire on this kind of
machine (measured-baselines.md §5).

    python benchmarks/ratelimit_acquire.py [--n 20000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectorctl.domain.values import RateLimitWindow  # noqa: E402
from connectorctl.resilience.clock import SystemClock  # noqa: E402
from connectorctl.resilience.ratelimit import SqliteRateLimiter  # noqa: E402
from connectorctl.store.db import StateDB  # noqa: E402

PYRATE_SQLITE_FILELOCK_MS = (0.4, 1.9)


def measure(limiter: SqliteRateLimiter, service: str, windows: list[RateLimitWindow], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        assert limiter.try_acquire(service, windows) == 0.0
        samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    limiter = SqliteRateLimiter(StateDB(Path(tempfile.mkdtemp()) / "bench.db"), SystemClock())
    cases = {
        # a quota no lease can cover: every acquire writes to SQLite (limit high enough never to refuse)
        "token by token (1 write per acquire)": ("small", [RateLimitWindow(args.n * 10, 3600.0)], True),
        "leased (1 write per 1% of the quota)": ("large", [RateLimitWindow(10_000_000, 3600.0)], False),
        "two windows, leased": ("two", [RateLimitWindow(1_000_000, 1.0), RateLimitWindow(100_000_000, 86400.0)], False),
    }
    for label, (service, windows, no_lease) in cases.items():
        if no_lease:
            import connectorctl.resilience.ratelimit as rl

            saved, rl.LEASE_FRACTION = rl.LEASE_FRACTION, 0.0
        try:
            measure(limiter, service, windows, 200)
            samples = measure(limiter, service, windows, args.n)
        finally:
            if no_lease:
                rl.LEASE_FRACTION = saved
        med, p99 = statistics.median(samples) * 1e6, sorted(samples)[int(len(samples) * 0.99)] * 1e6
        share = med / (PYRATE_SQLITE_FILELOCK_MS[0] * 1000)
        print(f"{label:40s} median {med:7.1f} µs  p99 {p99:7.1f} µs  = {share:.3f} of pyrate-limiter's best 0.4 ms")


if __name__ == "__main__":
    main()
