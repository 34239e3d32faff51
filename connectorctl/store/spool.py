"""The local audit spool: where log rows go when the state database will not take them.

A vendor call that already happened must keep its audit row even when the
database fails under it (PostgreSQL stopped, SQLite locked past the busy
timeout or read-only).  The log writer then appends the rows to a small SQLite
file on the local disk and the call returns normally: its row is committed,
locally.  The file runs with ``synchronous=FULL`` so a call that returned
survives a power cut, not only a crash.

Rows keep their ids, so moving them into the database (:meth:`AuditSpool.drain`)
is a replay made idempotent by ``ON CONFLICT (id) DO NOTHING``: a drain
interrupted after the database committed and before the spool forgot the rows
only repeats itself, and two processes draining at once write each row once.
No lock is held across the database write, so a slow database never makes the
processes that are spooling wait.

Several processes on a host may share one spool file (SQLite's file locks
serialise them); each row names the database it belongs to, so a spool shared
by several installations only ever drains a row into its own database.  A
PostgreSQL database is named ``postgresql://host:port/dbname`` with the port
filled in and the host lower-cased; rows spooled under another spelling of the
same database (``h/app`` for ``h:5432/app``) are matched by the same rule.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from connectorctl.errors import StateStoreError

# Appending is a few small writes; a generous timeout keeps a busy neighbour from losing a row.
LOCK_TIMEOUT_SECONDS = 30.0
DRAIN_BATCH = 500
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spooled_rows (id TEXT PRIMARY KEY, database TEXT NOT NULL, row TEXT NOT NULL, "
    "spooled_at REAL NOT NULL)"
)

SPOOL_HINT = (
    "the spool file itself failed, not the database: check that it can be read and written and that its disk has "
    "room, then run `connectorctl db drain-spool` again (a file that is not a database cannot be drained: move it "
    "aside to keep it)"
)


class SpoolError(StateStoreError):
    """The spool file failed, not the database: the remedy is on this host's disk."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint=SPOOL_HINT)


def spool_path(settings: Any) -> Path:
    """``audit_spool`` from the config; else beside a SQLite database, or in the state folder for PostgreSQL."""
    if settings.audit_spool:
        return Path(settings.audit_spool).expanduser()
    if isinstance(settings.database, Path):
        return settings.database.with_name(settings.database.name + ".audit-spool")
    return Path(settings.home) / "audit-spool.db"


class AuditSpool:
    """One spool file; every operation opens its own connection, so it works the same after fork()."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, database: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Keep ``rows`` (integration-log rows, id first) durably for ``database``; raises StateStoreError."""
        now = time.time()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _connect(self.path) as conn:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT OR IGNORE INTO spooled_rows (id, database, row, spooled_at) VALUES (?, ?, ?, ?)",
                    [(row[0], database, json.dumps(row), now) for row in rows],
                )
                conn.execute("COMMIT")
        except (OSError, sqlite3.Error, ValueError) as exc:  # ValueError: a path with a NUL in it
            raise SpoolError(f"audit spool {self.path} cannot be written ({exc})") from None

    def count(self, database: str) -> int:
        """Rows waiting for ``database`` (0 when there is no spool file)."""
        if not self.path.exists():
            return 0
        try:
            with _connect(self.path) as conn:
                names = _spellings(conn, database)
                return int(
                    conn.execute(
                        f"SELECT count(*) FROM spooled_rows WHERE database IN ({_marks(names)})", names
                    ).fetchone()[0]
                )
        except sqlite3.Error as exc:
            raise SpoolError(f"audit spool {self.path} cannot be read ({exc})") from None

    def summary(self, database: str) -> dict[str, Any]:
        """The ``audit_spool`` object of every output: its path, the rows waiting for ``database`` and, when the
        file cannot be read, why (``rows`` is then None): monitoring reports that instead of failing with it."""
        try:
            rows, error = self.count(database), None
        except SpoolError as exc:
            rows, error = None, exc.message
        return {"path": str(self.path), "rows": rows, "error": error}

    def drain(self, db: Any) -> int:
        """Move ``db``'s spooled rows into it; how many were moved.

        Raises StateStoreError when the database still refuses (what was moved stays moved).
        """
        from connectorctl.store.logs import insert_rows

        if not self.path.exists():
            return 0
        moved = 0
        try:
            with _connect(self.path) as conn:
                names = _spellings(conn, db.label)
                while True:
                    batch = conn.execute(
                        f"SELECT id, row FROM spooled_rows WHERE database IN ({_marks(names)}) ORDER BY id LIMIT ?",
                        (*names, DRAIN_BATCH),
                    ).fetchall()
                    if not batch:
                        return moved
                    insert_rows(db, [tuple(json.loads(row)) for _, row in batch], replay=True)
                    conn.execute("BEGIN IMMEDIATE")
                    conn.executemany("DELETE FROM spooled_rows WHERE id = ?", [(row_id,) for row_id, _ in batch])
                    conn.execute("COMMIT")
                    moved += len(batch)
        except sqlite3.Error as exc:
            raise SpoolError(f"audit spool {self.path} cannot be drained ({exc})") from None


def log_rows(count: int, kind: str = "log") -> str:
    """``1 log row``, ``2 log rows``: counts as the operator reads them."""
    return f"{count} {kind} row{'' if count == 1 else 's'}"


def rows_wait(count: int, kind: str = "log") -> str:
    return f"{log_rows(count, kind)} {'waits' if count == 1 else 'wait'}"


def _canonical(database: str) -> str:
    """One name per database, whichever spelling wrote the row (a SQLite file is already named by its path)."""
    if not database.startswith("postgresql://"):
        return database
    from connectorctl.store.postgres import describe  # psycopg: only where PostgreSQL rows are spooled

    return describe(database)


def _spellings(conn: sqlite3.Connection, database: str) -> list[str]:
    """The names rows for ``database`` were spooled under."""
    target = _canonical(database)
    return [
        name for (name,) in conn.execute("SELECT DISTINCT database FROM spooled_rows") if _canonical(name) == target
    ]


def _marks(names: Sequence[str]) -> str:
    return ", ".join("?" * len(names)) or "NULL"


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a returned call's row survives a power cut
        conn.execute(_SCHEMA)
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
