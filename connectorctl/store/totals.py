"""Outbound-call totals that outlive the rows they count (the Prometheus counters' source).

Counters must only go up and must agree wherever they are read: in each of
``serve``'s processes, and after a restart.  So the totals are a function of
the file, not of a process's memory: what the log holds now, plus what
``logs purge`` deleted, which it adds to ``log_totals_purged`` in the same
transaction as each delete (one row per service, status, latency bucket and
rate-limit source, so the table stays tiny).  A reader folds both once and
then only rows added since; ``api/prom.py`` keeps that fold current so no row
is purged (at least a day old) before every running server has counted it,
and saves it (``log_totals_checkpoint``) for the next server to resume from.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)

Group = tuple[
    str, str, int, int, int, int
]  # service, status, bucket, local (1 = our own rate limit), count, duration sum (ms)

_BUCKET = (
    "CASE "
    + " ".join(f"WHEN duration_ms <= {ms} THEN {i}" for i, ms in enumerate(BUCKETS_MS))
    + f" ELSE {len(BUCKETS_MS)} END"
)
_GROUPED = (
    f"SELECT service_name, status, {_BUCKET} AS bucket, CASE WHEN status = 'rate_limited' AND http_status_code IS "
    "NULL THEN 1 ELSE 0 END AS local, "
    "count(*), coalesce(sum(duration_ms), 0) FROM integration_logs WHERE {where} AND direction = 'outbound' "
    "GROUP BY service_name, status, bucket, local"
)
_BY_SEQ_RANGE = _GROUPED.format(where="seq > ? AND seq <= ?")
_ADD_PURGED = (
    "INSERT INTO log_totals_purged (service_name, status, bucket, local, count, duration_sum_ms) "
    + _GROUPED
    + " ON CONFLICT (service_name, status, bucket, local) DO UPDATE SET count = log_totals_purged.count + "
    "excluded.count,"
    " duration_sum_ms = log_totals_purged.duration_sum_ms + excluded.duration_sum_ms"
)


def create_table(db: Database) -> None:
    """Migration 5."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS log_totals_purged (service_name TEXT NOT NULL, status TEXT NOT NULL, bucket "
        "INTEGER NOT NULL,"
        " local INTEGER NOT NULL, count INTEGER NOT NULL, duration_sum_ms INTEGER NOT NULL,"
        " PRIMARY KEY (service_name, status, bucket, local)) WITHOUT ROWID"
    )


def delete_counted(conn: sqlite3.Connection, seqs: list[int]) -> int:
    """Delete these log rows, adding them to the purged totals first; inside the caller's write transaction."""
    if not seqs:
        return 0
    where = f"seq IN ({', '.join('?' * len(seqs))})"  # a plain list: both engines take thousands of parameters
    conn.execute(_ADD_PURGED.replace("{where}", where), seqs)
    return conn.execute(f"DELETE FROM integration_logs WHERE {where}", seqs).rowcount


def create_checkpoint_table(db: Database) -> None:
    """Migration 7: the last fold any server saved (``api/prom.py``), one row."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS log_totals_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "last_seq INTEGER NOT NULL, purged INTEGER NOT NULL, totals TEXT NOT NULL)"
    )


def purged_count(conn: sqlite3.Connection) -> int:
    """How many rows purges have counted in so far: it changes exactly when a purge deleted counted rows."""
    return int(conn.execute("SELECT coalesce(sum(count), 0) FROM log_totals_purged").fetchone()[0])


def checkpoint(conn: sqlite3.Connection) -> tuple[int, int, str] | None:
    """``(last_seq, purged_count then, totals as JSON)`` of the last saved fold, if any."""
    row = conn.execute("SELECT last_seq, purged, totals FROM log_totals_checkpoint WHERE id = 1").fetchone()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))


def save_checkpoint(conn: sqlite3.Connection, last_seq: int, purged: int, state: str) -> None:
    conn.execute(
        "INSERT INTO log_totals_checkpoint (id, last_seq, purged, totals) VALUES (1, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET last_seq = excluded.last_seq, purged = excluded.purged, "
        "totals = excluded.totals",
        (last_seq, purged, state),
    )


def since(conn: sqlite3.Connection, after_seq: int, top: int) -> list[Group]:
    """Groups of the rows with ``after_seq < seq <= top``."""
    return conn.execute(_BY_SEQ_RANGE, (after_seq, top)).fetchall()


def purged(conn: sqlite3.Connection) -> list[Group]:
    return conn.execute(
        "SELECT service_name, status, bucket, local, count, duration_sum_ms FROM log_totals_purged"
    ).fetchall()
