"""Cost of one rate-limit acquire shared through SQLite: connectorctl's limiter and pyrate-limiter, in the same run.

connectorctl, three shapes: a quota no lease can cover (every acquire is one
conditional UPSERT in SQLite), a large quota where a process leases 1 % of it
per write, and two windows at once.  pyrate-limiter (the `bench` extra) with
its SQLite bucket, file lock on (its only mode that is exact across processes;
it needs a blocking acquire) and off.  Every side runs in alternating blocks
on its own file in the same temporary directory, so machine noise hits all alike.

    pip install -e '.[bench]'
    python benchmarks/ratelimit_acquire.py [--n 20000] [--block 1000] [--database postgresql://...]

With ``--database`` the three connectorctl shapes also run on that PostgreSQL database (its
``rate_limit_buckets`` rows for the bench services are reset first), in the same blocks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectorctl.domain.values import RateLimitWindow  # noqa: E402
from connectorctl.resilience.clock import SystemClock  # noqa: E402
from connectorctl.resilience.ratelimit import SqliteRateLimiter  # noqa: E402
from connectorctl.store.db import StateDB  # noqa: E402


def connectorctl_sides(target: Path | str, n: int, label: str = "connectorctl") -> dict[str, Callable[[], bool]]:
    import connectorctl.resilience.ratelimit as rl

    db = StateDB(target)
    db.run(lambda c: c.execute("DELETE FROM rate_limit_buckets WHERE service_name IN ('small', 'large', 'two')"))
    limiter = SqliteRateLimiter(db, SystemClock())
    small = [RateLimitWindow(n * 100, 3600.0)]  # high enough never to refuse
    large = [RateLimitWindow(100_000_000, 3600.0)]
    two = [RateLimitWindow(10_000_000, 1.0), RateLimitWindow(1_000_000_000, 86400.0)]

    def token_by_token() -> bool:
        saved, rl.LEASE_FRACTION = rl.LEASE_FRACTION, 0.0  # a quota no lease can cover: every acquire writes
        try:
            return limiter.try_acquire("small", small) == 0.0
        finally:
            rl.LEASE_FRACTION = saved

    return {
        f"{label}, token by token (1 write per acquire)": token_by_token,
        f"{label}, leased (1 write per 1% of the quota)": lambda: limiter.try_acquire("large", large) == 0.0,
        f"{label}, two windows, leased": lambda: limiter.try_acquire("two", two) == 0.0,
    }


def pyrate_sides(tmp: Path, n: int) -> dict[str, Callable[[], bool]]:
    from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

    rates = [Rate(n * 100, Duration.HOUR)]
    locked = Limiter(SQLiteBucket.init_from_file(rates, db_path=str(tmp / "pyrate-locked.db"), use_file_lock=True))
    unlocked = Limiter(SQLiteBucket.init_from_file(rates, db_path=str(tmp / "pyrate.db"), use_file_lock=False))
    return {
        "pyrate-limiter SQLite, file lock (exact)": lambda: locked.try_acquire("bench", blocking=True, timeout=1) is True,
        "pyrate-limiter SQLite, no lock (over-admits)": lambda: unlocked.try_acquire("bench", blocking=False) is True,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="acquires per side")
    parser.add_argument("--block", type=int, default=1000, help="acquires per alternating block")
    parser.add_argument("--database", help="also run connectorctl's limiter on this postgresql:// database")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ratelimit-bench-"))
    try:
        sides = {**connectorctl_sides(tmp / "connectorctl.db", args.n), **pyrate_sides(tmp, args.n)}
        if args.database:
            sides.update(connectorctl_sides(args.database, args.n, "postgresql"))
    except ImportError:
        raise SystemExit("pyrate-limiter is not installed: pip install -e '.[bench]'") from None
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for fn in sides.values():  # warm up: tables, statement caches
        for _ in range(200):
            assert fn()
    for _ in range(max(1, args.n // args.block)):
        for name, fn in sides.items():
            for _ in range(args.block):
                t0 = time.perf_counter()
                admitted = fn()
                samples[name].append(time.perf_counter() - t0)
                assert admitted, name
    reference = statistics.median(samples["pyrate-limiter SQLite, file lock (exact)"])
    for name, values in samples.items():
        med, p99 = statistics.median(values) * 1e6, sorted(values)[int(len(values) * 0.99)] * 1e6
        print(f"{name:52s} median {med:8.1f} µs  p99 {p99:8.1f} µs  = {med / 1e6 / reference:.3f} x pyrate-limiter (file lock)")


if __name__ == "__main__":
    main()
