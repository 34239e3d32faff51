"""Outbound-call totals kept at write time: the Prometheus counters' source.

Counters must only go up and must agree wherever they are read: in each of
``serve``'s processes, on each host, and after a restart.  So they live in the
database, in ``log_totals`` (one row per service, status, latency bucket and
rate-limit source: a few hundred rows at most), and a trigger on
``integration_logs`` adds each outbound row to its group in the transaction
that inserts the row.  Every way a row gets in is counted exactly once: the
pipeline's group commit, an entry recorded through the library, a row replayed
with ``ON CONFLICT (id) DO NOTHING`` (a skipped row fires no trigger), a bulk
load.  ``logs purge`` deletes rows without touching the totals, so purging never
lowers a counter, and no reader ever aggregates the log itself: a scrape reads
the small table.

The trigger costs one indexed upsert per logged row (about 10-15 µs on SQLite);
on PostgreSQL concurrent inserts of the same group queue on its row for the
rest of their (short) transaction.
"""

from __future__ import annotations

import sqlite3
from typing import Any

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)

Group = tuple[
    str, str, int, int, int, int
]  # service, status, bucket, local (1 = our own rate limit), count, duration sum (ms)


def _bucket(row: str) -> str:
    whens = " ".join(f"WHEN {row}duration_ms <= {ms} THEN {i}" for i, ms in enumerate(BUCKETS_MS))
    return f"CASE {whens} ELSE {len(BUCKETS_MS)} END"


def _local(row: str) -> str:
    return f"CASE WHEN {row}status = 'rate_limited' AND {row}http_status_code IS NULL THEN 1 ELSE 0 END"


_COLUMNS = "service_name, status, bucket, local, count, duration_sum_ms"
_ADD = (
    " ON CONFLICT (service_name, status, bucket, local) DO UPDATE SET count = log_totals.count + excluded.count,"
    " duration_sum_ms = log_totals.duration_sum_ms + excluded.duration_sum_ms"
)
# One row's upsert, as both engines' triggers run it.
_COUNT_NEW = (
    f"INSERT INTO log_totals ({_COLUMNS}) VALUES (NEW.service_name, NEW.status, {_bucket('NEW.')}, "
    f"{_local('NEW.')}, 1, NEW.duration_ms){_ADD};"
)
_SQLITE_TRIGGER = (
    "CREATE TRIGGER log_totals_count AFTER INSERT ON integration_logs WHEN NEW.direction = 'outbound' "
    f"BEGIN {_COUNT_NEW} END"
)
_PG_FUNCTION = (
    f"CREATE FUNCTION log_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN {_COUNT_NEW} RETURN NULL; END $$"
)
_PG_TRIGGER = (
    "CREATE TRIGGER log_totals_count AFTER INSERT ON integration_logs FOR EACH ROW "
    "WHEN (NEW.direction = 'outbound') EXECUTE FUNCTION log_totals_count()"
)
_SEED = (
    f"INSERT INTO log_totals ({_COLUMNS}) SELECT service_name, status, {_bucket('')} AS bucket, {_local('')} AS local, "
    "count(*), coalesce(sum(duration_ms), 0) FROM integration_logs INDEXED BY ix_logs_service_time_cover "
    "WHERE direction = 'outbound' "
    f"GROUP BY service_name, status, bucket, local{_ADD}"
)


def count_at_write_time(db: Any) -> None:
    """Migration 8: totals kept by a trigger, seeded once from the log as it stands.

    The purged totals (migration 5, what ``logs purge`` had deleted) become the
    base, every row still in the log is added to it in one grouped pass, and the
    fold checkpoint (migration 7) goes.  The pass reads the whole log once (on
    SQLite its covering index, not the wide rows) inside the migration's write
    transaction, so writers wait that long (``busy_timeout``): see docs/api.md.  The trigger is created first:
    on PostgreSQL that waits for inserts in flight and holds new ones until the
    migration commits, so every row is counted by exactly one of the two.
    """
    from connectorctl.store.pg_schema import PgSchema

    db.execute("ALTER TABLE log_totals_purged RENAME TO log_totals")
    if isinstance(db, PgSchema):
        db.execute(_PG_FUNCTION)
        db.execute(_PG_TRIGGER)
    else:
        db.execute(_SQLITE_TRIGGER)
    db.execute(_SEED)
    db.execute("DROP TABLE log_totals_checkpoint")


def read(conn: sqlite3.Connection) -> list[Group]:
    return conn.execute(f"SELECT {_COLUMNS} FROM log_totals").fetchall()
