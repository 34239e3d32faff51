"""What keeping the Prometheus totals at write time costs: per logged row, and once at upgrade.

    python benchmarks/log_totals.py                      # SQLite, 20,000 inserts per side, 1,000,000-row upgrade
    python benchmarks/log_totals.py --upgrade-rows 0     # the per-insert comparison only
    python benchmarks/log_totals.py --database postgresql://localhost/bench

Per insert: two databases of the same schema, one with the totals trigger and one with it dropped,
each taking the pipeline's single-row autocommit INSERT in turn (interleaved rounds, so machine
load hits both alike); prints the medians and the added microseconds.

Upgrade (SQLite only): a log of --upgrade-rows rows at the schema before the totals existed, then
the time the migration that counts it takes (the write lock is held that long).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connectorctl.store import migrations  # noqa: E402
from connectorctl.store.db import StateDB  # noqa: E402
from connectorctl.store.logs import INSERT_LOG, iso_utc  # noqa: E402


def row(n: int, rng: random.Random) -> tuple[Any, ...]:
    ok = rng.random() < 0.97
    return (f"B{time.time_ns():020X}{n:06X}", None, rng.choice(["fake", "file", "console", "vendor3"]), "send_email",
            "https://x.example.invalid/send", "POST", "success" if ok else "failed", 200 if ok else 503,
            int(rng.lognormvariate(5.3, 0.6)), '{"to":"a@example.com"}', None, None, None, 1, None, "outbound",
            iso_utc(time.time()))


def drop_trigger(db: StateDB) -> None:
    db.run(lambda c: c.execute("DROP TRIGGER log_totals_count" + (" ON integration_logs" if db.engine == "postgresql" else "")))


def per_insert(target_with: Any, target_without: Any, inserts: int) -> dict[str, float]:
    dbs = {"with_trigger": StateDB(target_with), "without_trigger": StateDB(target_without)}
    drop_trigger(dbs["without_trigger"])
    times: dict[str, list[float]] = {name: [] for name in dbs}
    rng = random.Random(3)
    for n in range(inserts):
        for name, db in (dbs.items() if n % 2 else reversed(dbs.items())):
            values = row(n, rng)
            t0 = time.perf_counter()
            db.run(lambda c: c.execute(INSERT_LOG, values))
            times[name].append(time.perf_counter() - t0)
    for db in dbs.values():
        db.close()
    med = {name: statistics.median(ts) * 1e6 for name, ts in times.items()}
    return {"median_us_with_trigger": round(med["with_trigger"], 1), "median_us_without_trigger": round(med["without_trigger"], 1),
            "added_us": round(med["with_trigger"] - med["without_trigger"], 1),
            "ratio": round(med["with_trigger"] / med["without_trigger"], 3)}


def upgrade(path: Path, rows: int) -> dict[str, float]:
    """Seconds the totals migration takes on a log of ``rows`` rows created before it existed."""
    migrations._load_area_migrations()
    everything = list(migrations.MIGRATIONS)
    migrations.MIGRATIONS[:] = [m for m in everything if m[0] != 8]
    try:
        StateDB(path).close()
    finally:
        migrations.MIGRATIONS[:] = everything
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    rng = random.Random(5)
    for start in range(0, rows, 20000):
        conn.execute("BEGIN")
        conn.executemany(INSERT_LOG, [row(n, rng) for n in range(start, min(rows, start + 20000))])
        conn.execute("COMMIT")
    conn.close()
    db = StateDB(path, migrate=False)
    t0 = time.perf_counter()
    applied = db.migrate()
    seconds = time.perf_counter() - t0
    counted = db.run(lambda c: c.execute("SELECT sum(count) FROM log_totals").fetchone()[0])
    db.close()
    assert applied == [8] and counted == rows, (applied, counted)
    return {"rows": rows, "migration_seconds": round(seconds, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inserts", type=int, default=20000, help="single-row inserts per side")
    ap.add_argument("--upgrade-rows", type=int, default=1_000_000)
    ap.add_argument("--database", help="a PostgreSQL URL for the per-insert comparison (two schemas are made in it)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="log-totals-"))
    report: dict[str, object] = {}
    try:
        if args.database:
            report["postgresql_per_insert"] = per_insert_pg(args.database, args.inserts)
        else:
            report["sqlite_per_insert"] = per_insert(work / "with.db", work / "without.db", args.inserts)
            if args.upgrade_rows:
                report["sqlite_upgrade"] = upgrade(work / "upgrade.db", args.upgrade_rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


def per_insert_pg(url: str, inserts: int) -> dict[str, float]:
    """Two fresh databases on the server of ``url``, one of them without the trigger."""
    from urllib.parse import urlsplit

    import psycopg

    names = ("bench_totals_with", "bench_totals_without")
    with psycopg.connect(url, autocommit=True) as admin:
        for name in names:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {name}")
    try:
        return per_insert(*(urlsplit(url)._replace(path=f"/{name}").geturl() for name in names), inserts)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            for name in names:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
