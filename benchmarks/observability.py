"""Observability benchmark: metrics, logs list and purge on a big integration log.

Builds a database of ``--rows`` log rows (default 1,000,000) across 10
services and 30 days (svc-0 carries 40 % of the traffic, like a main email
vendor), then times, in one run and on a warm cache:

  (a) a full-table scan, ``count(*)`` over a non-indexed expression: the yardstick
  (b) ``metrics`` for one service over 7 days, p95 included     target <= 0.10 x (a)
  (c) the first page of ``logs list`` with service + status      target <= 0.01 x (a)
  (d) ``logs purge`` of the 15 oldest days while another process inserts rows
      continuously: the writer must see 0 errors and no insert over 1 s

    python benchmarks/observability.py [--rows 1000000] [--db PATH] [--keep]
    python benchmarks/observability.py --database postgresql://user@host/dbname   (the same on PostgreSQL)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectorctl.store.db import StateDB  # noqa: E402
from connectorctl.store.logs import INSERT_LOG, iso_utc  # noqa: E402
from connectorctl.store.queries import LogFilter, list_logs, metrics_for, purge_logs, series  # noqa: E402

SERVICES = [f"svc-{i}" for i in range(10)]
WEIGHTS = [40] + [60 / 9] * 9
STATUSES = [("success", 200, 950), ("failed", 503, 20), ("failed", 400, 10), ("timeout", None, 10), ("rate_limited", 429, 5), ("circuit_open", None, 5)]

WRITER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[2])
from connectorctl.store.db import StateDB
from connectorctl.store.logs import INSERT_LOG, iso_utc
db = StateDB(sys.argv[1], migrate=False)
stop = sys.argv[3]
import os
worst = 0.0; errors = 0; n = 0; lat = []
while not os.path.exists(stop):
    row = ("w%025d" % n, None, "svc-writer", "send_email", "https://api.example.com/v3/mail/send", "POST", "success", 202,
           12, '{"to":"x"}', None, None, None, 1, None, "outbound", iso_utc(time.time()))
    t0 = time.perf_counter()
    try:
        db.run(lambda c: c.execute(INSERT_LOG, row))
        n += 1
    except Exception as exc:
        errors += 1
        print(repr(exc), file=sys.stderr)
    dt = time.perf_counter() - t0
    lat.append(dt); worst = max(worst, dt)
    time.sleep(0.002)
lat.sort()
print(json.dumps({"inserted": n, "errors": errors, "worst_ms": round(worst * 1000, 1), "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None}))
"""


def build(path: Path | str, rows: int, now: datetime, seed: int = 7) -> None:
    rng = random.Random(seed)
    StateDB(path).close()  # migrations: schema and indexes as shipped
    db = StateDB(path, migrate=False)
    start = now - timedelta(days=30)
    span = 30 * 86400
    statuses = [s[:2] for s in STATUSES]
    status_weights = [s[2] for s in STATUSES]
    batch = 50_000
    t0 = time.perf_counter()
    for base in range(0, rows, batch):
        n = min(batch, rows - base)
        services = rng.choices(SERVICES, WEIGHTS, k=n)
        outcomes = rng.choices(statuses, status_weights, k=n)
        data = []
        for j in range(n):
            i = base + j
            at = start.timestamp() + span * i / rows
            status, http = outcomes[j]
            attempt = 1 if rng.random() < 0.9 else 2
            data.append((
                f"{int(at * 1000):013d}{i:013d}", f"tenant-{i % 5}", services[j], "send_email", f"https://api.{services[j]}.example.com/v3/mail/send",
                "POST", status, http, int(rng.lognormvariate(5.3, 0.6)), '{"to":["a@example.com"],"subject":"Invoice"}', '{"id":"x"}',
                None if status == "success" else "vendor said no", None if status == "success" else status, attempt, f"c{i}", "outbound", iso_utc(at),
            ))
        with db.write() as conn:
            conn.executemany(INSERT_LOG, data)
    if db.engine == "postgresql":  # what autovacuum does to a table that stopped growing: statistics, visibility map
        for _ in range(5):  # an autoanalyze still running from the load holds back what VACUUM may mark all-visible
            db.conn.execute("VACUUM (ANALYZE) integration_logs")
            pages, visible = db.conn.execute(
                "SELECT relpages, relallvisible FROM pg_class WHERE oid = 'integration_logs'::regclass").fetchone()
            if visible >= pages * 0.99:
                break
            time.sleep(2)
        print(f"visibility map: {visible:,} of {pages:,} pages all-visible")
        size = db.conn.execute("SELECT pg_total_relation_size('integration_logs')").fetchone()[0]
    else:
        db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = Path(path).stat().st_size
    db.close()
    print(f"built {rows:,} rows in {time.perf_counter() - t0:.1f} s, {size / 1e6:.0f} MB")


def timed(fn, repeat: int = 5) -> float:
    fn()  # warm the cache
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="Reuse/build at this path (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--database", help="A postgresql:// database to build in (if its log is empty) and measure.")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="connectorctl-bench-")
    path: Path | str = args.database or args.db or Path(tmp) / "bench.db"
    now = datetime.now(timezone.utc)
    if args.database:
        if not StateDB(path).conn.execute("SELECT count(*) FROM integration_logs").fetchone()[0]:
            build(path, args.rows, now)
    elif not Path(path).exists():
        build(path, args.rows, now)
    db = StateDB(path)
    conn = db.conn
    a = timed(lambda: conn.execute("SELECT count(*) FROM integration_logs WHERE endpoint LIKE '%/v3/%' AND length(request_data) > 10").fetchone(), 3)
    week = (now - timedelta(days=7), now)

    def metrics(service: str, chart: bool = False) -> dict:
        """What `connectorctl metrics SERVICE --since 7d` reads: numbers, breakdowns, percentiles (and its chart)."""
        flt = LogFilter(service=service, since=week[0], until=week[1])
        if chart:
            series(db, flt, *week, 24)
        return metrics_for(db, flt)

    b_typical = timed(lambda: metrics("svc-3"))
    b_busiest = timed(lambda: metrics("svc-0"))
    b_chart = timed(lambda: metrics("svc-3", chart=True))
    c_failed = timed(lambda: list_logs(db, LogFilter(service="svc-3", status="failed"), 100))
    c_success = timed(lambda: list_logs(db, LogFilter(service="svc-0", status="success"), 100))
    n3, n0 = (metrics(s)["total_count"] for s in ("svc-3", "svc-0"))
    print(f"(a) full scan                         {a * 1000:8.1f} ms")
    print(f"(b) metrics svc-3 7d ({n3:,} rows)      {b_typical * 1000:8.1f} ms  ratio {b_typical / a:.3f}  (target <= 0.10)")
    print(f"    metrics svc-0 7d ({n0:,} rows)      {b_busiest * 1000:8.1f} ms  ratio {b_busiest / a:.3f}")
    print(f"    metrics svc-3 7d + 24-slice chart    {b_chart * 1000:8.1f} ms  ratio {b_chart / a:.3f}")
    print(f"(c) logs list svc-3 failed, page 1    {c_failed * 1000:8.1f} ms  ratio {c_failed / a:.4f}  (target <= 0.01)")
    print(f"    logs list svc-0 success, page 1   {c_success * 1000:8.1f} ms  ratio {c_success / a:.4f}")

    # (d) purge 15 days beside a live writer process
    purge_now = now
    cutoff = iso_utc((purge_now - timedelta(days=15)).timestamp())
    keep_before = conn.execute("SELECT count(*) FROM integration_logs WHERE created_at >= ?", (cutoff,)).fetchone()[0]
    stop = Path(tmp) / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(ROOT), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    result = purge_logs(db, 15, now=purge_now)
    time.sleep(0.5)
    stop.touch()
    out, err = writer.communicate(timeout=60)
    stats = json.loads(out)
    keep_after = conn.execute("SELECT count(*) FROM integration_logs WHERE created_at >= ? AND service_name <> 'svc-writer'", (cutoff,)).fetchone()[0]
    written = conn.execute("SELECT count(*) FROM integration_logs WHERE service_name = 'svc-writer'").fetchone()[0]
    print(f"(d) purge 15 days: deleted {result['deleted']:,} rows in {result['seconds']:.1f} s, {result['batches']} batches, worst batch {result['worst_batch_ms']} ms")
    print(f"    writer: {stats['inserted']:,} inserts, errors {stats['errors']}, worst insert {stats['worst_ms']} ms, p99 {stats['p99_ms']} ms"
          f"  (target: 0 errors, worst < 1000 ms)")
    print(f"    in-window rows kept: {keep_after:,} of {keep_before:,}; writer rows present: {written:,} of {stats['inserted']:,}")
    if err.strip():
        print("    writer stderr:", err.strip()[:500])
    db.close()
    if not args.keep and args.db is None:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
