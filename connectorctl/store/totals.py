"""Outbound-call totals kept at write time: the Prometheus counters' source.

Counters must only go up and must agree wherever they are read: in each of
``serve``'s processes, on each host, and after a restart.  So they live in the
database, in ``log_totals`` (per service, status, latency bucket and
rate-limit source: a few hundred rows, however long the log), and a trigger on
``integration_logs`` adds each outbound row to its group in the transaction
that inserts the row.  Every way a row gets in is counted exactly once: the
pipeline's group commit, an entry recorded through the library, a row replayed
with ``ON CONFLICT (id) DO NOTHING`` (a skipped row fires no trigger), a bulk
load.  ``logs purge`` deletes rows without touching the totals, so purging never
lowers a counter, and no reader ever aggregates the log itself: a scrape reads
the small table.

The trigger costs one indexed upsert per logged row: about 10-15 µs on SQLite,
more on PostgreSQL (a PL/pgSQL call), where the counts are also spread over
shards so that concurrent writers do not queue on one row.
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
_KEY = "service_name, status, bucket, local, shard"
_ADD = (
    f" ON CONFLICT ({_KEY}) DO UPDATE SET count = log_totals.count + excluded.count,"
    " duration_sum_ms = log_totals.duration_sum_ms + excluded.duration_sum_ms"
)
_CREATE = (
    "CREATE TABLE log_totals (service_name TEXT NOT NULL, status TEXT NOT NULL, bucket INTEGER NOT NULL, "
    "local INTEGER NOT NULL, shard INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL, "
    f"duration_sum_ms INTEGER NOT NULL, PRIMARY KEY ({_KEY})) WITHOUT ROWID"
)


def _count_new(shard: str) -> str:
    """One row's upsert, as a trigger runs it."""
    return (
        f"INSERT INTO log_totals ({_COLUMNS}, shard) VALUES (NEW.service_name, NEW.status, {_bucket('NEW.')}, "
        f"{_local('NEW.')}, 1, NEW.duration_ms, {shard}){_ADD};"
    )


_SQLITE_TRIGGER = (
    "CREATE TRIGGER log_totals_count AFTER INSERT ON integration_logs WHEN NEW.direction = 'outbound' "
    f"BEGIN {_count_new('0')} END"
)
# PostgreSQL writers run side by side and a counter row stays locked until its transaction commits: each
# connection counts into one of SHARDS rows of a group, so concurrent writers rarely queue on one row.
SHARDS = 16
_PG_FUNCTION = (
    "CREATE FUNCTION log_totals_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"{_count_new(f'pg_backend_pid() % {SHARDS}')} RETURN NULL; END $$"
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


# `db copy` keeps the source's totals (they count rows its purges deleted) in their own shard, replaced by each
# run, and takes the log rows it copies back out of what the target's trigger counted: the target's own calls,
# before and after the switch, stay counted beside them, and running the copy again counts nothing twice.
COPIED_SHARD = -1
_UNCOUNT = (
    f"INSERT INTO log_totals ({_COLUMNS}, shard) SELECT service_name, status, {_bucket('')} AS bucket, "
    f"{_local('')} AS local, -count(*), -coalesce(sum(duration_ms), 0), pg_backend_pid() % {SHARDS} "
    "FROM integration_logs WHERE id = ANY(?) AND direction = 'outbound' GROUP BY service_name, status, bucket, local"
    f"{_ADD}"
)


def insert_uncounted(conn: Any, insert: str, rows: list[Any], id_at: int) -> int:
    """Insert copied log rows (PostgreSQL, in the caller's transaction) without counting them; how many were new."""
    ids = [row[id_at] for row in rows]
    there = {r[0] for r in conn.execute("SELECT id FROM integration_logs WHERE id = ANY(?)", (ids,)).fetchall()}
    inserted = int(conn.executemany(insert, rows).rowcount)
    new = [i for i in ids if i not in there]
    if new:
        conn.execute(_UNCOUNT, (new,))
        conn.execute("DELETE FROM log_totals WHERE count = 0")
    return inserted


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

    db.execute(_CREATE)
    db.execute(f"INSERT INTO log_totals ({_COLUMNS}) SELECT {_COLUMNS} FROM log_totals_purged")
    if isinstance(db, PgSchema):
        db.execute(_PG_FUNCTION)
        db.execute(_PG_TRIGGER)
    else:
        db.execute(_SQLITE_TRIGGER)
    db.execute(_SEED)
    db.execute("DROP TABLE log_totals_purged")
    db.execute("DROP TABLE log_totals_checkpoint")


def read(conn: sqlite3.Connection) -> list[Group]:
    """Every counter row; a group may come in several shards (its counts add up)."""
    return conn.execute(f"SELECT {_COLUMNS} FROM log_totals").fetchall()
