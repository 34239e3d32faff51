"""Looking after the state database: apply migrations, check it, drain the audit spool into it, and move a
SQLite installation to PostgreSQL.

``copy`` is the grow-up path from one host to many: every table the target's
migrations know is read from the SQLite file in primary-key batches and written
with ``ON CONFLICT DO NOTHING``, one transaction per batch, so an interrupted
copy is simply run again (rows already there are skipped); the call totals
(``store/totals.py``) the source brings are added to the target's own, once.  It ends by
comparing the row count of every table on both sides and moving the identity
sequences past the copied ids.  Hosts should be stopped while it runs: rows
written to the file after a table was copied are not carried over.
"""

from __future__ import annotations

import time
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from connectorctl.errors import InvalidInputError, StateStoreError
from connectorctl.store import totals
from connectorctl.store.db import StateDB, is_database_url
from connectorctl.store.migrations import MIGRATIONS, applied_numbers
from connectorctl.store.spool import AuditSpool, SpoolError, rows_wait

Progress = Callable[[str, int], None]  # (table, rows copied so far)


def migrate(target: Path | str) -> dict[str, Any]:
    """Apply pending migrations (once, under the cross-host lock); what was applied."""
    db = StateDB(target, migrate=False)
    try:
        applied = db.migrate()
        return {"database": db.label, "engine": db.engine, "applied": applied, "schema_version": _version(db)}
    finally:
        db.close()


def check(target: Path | str, spool: AuditSpool) -> dict[str, Any]:
    """A round trip, the schema version, pending migrations and the row count of every table; log rows waiting
    in the audit spool are moved in before the rows are counted."""
    db = StateDB(target, migrate=False)
    try:
        with _spool_on_failure(db, spool):
            db.run(lambda c: c.execute("SELECT 1").fetchone())  # connect first: the round trip is what every call pays
            started = time.perf_counter()
            db.run(lambda c: c.execute("SELECT 1").fetchone())
            round_trip_ms = round((time.perf_counter() - started) * 1000, 2)
            done = db.run(lambda c: applied_numbers(c, db.engine)) or set()
            pending = sorted(n for n, _, _ in MIGRATIONS if n not in done)
            drained = _drain(db, spool) if done else {}
            tables = {t: _count(db, t) for t in _tables(db)} if done else {}
        return {
            "database": db.label,
            "engine": db.engine,
            "reachable": True,
            "round_trip_ms": round_trip_ms,
            "schema_version": max(done, default=0),
            "pending_migrations": pending,
            **drained,
            "tables": tables,
        }
    finally:
        db.close()


def drain_spool(target: Path | str, spool: AuditSpool) -> dict[str, Any]:
    """Move the log rows waiting in the audit spool into the database (they keep their ids: no duplicates)."""
    db = StateDB(target, migrate=False)
    try:
        with _spool_on_failure(db, spool):
            db.migrate()
            return {"database": db.label, **_drain(db, spool)}
    finally:
        db.close()


def _drain(db: StateDB, spool: AuditSpool) -> dict[str, Any]:
    drained = spool.drain(db)
    summary = spool.summary(db.label)
    if summary["error"]:
        raise SpoolError(summary["error"])
    return {"audit_spool": summary, "spool_drained": drained}


@contextmanager
def _spool_on_failure(db: StateDB, spool: AuditSpool) -> Iterator[None]:
    """A database that refuses: say how many log rows wait for it in the spool."""
    try:
        yield
    except SpoolError:
        raise  # not the database: its own hint says what to do with the file
    except StateStoreError as exc:
        try:
            waiting = spool.count(db.label)
        except StateStoreError:
            raise exc from None
        if waiting:
            exc.hint = (
                f"{rows_wait(waiting, 'integration-log')} in the audit spool {spool.path}; "
                "`connectorctl db drain-spool` moves them in once the database answers"
                + (f"; {exc.hint}" if exc.hint else "")
            )
        raise


def copy(source: Path, to: str, *, batch_size: int = 5000, progress: Progress | None = None) -> dict[str, Any]:
    """Copy a SQLite installation's state into PostgreSQL; every table's row count is verified."""
    if not is_database_url(to):
        raise InvalidInputError("--to must be a postgresql:// URL")
    from connectorctl.store.postgres import check_url

    check_url(to, InvalidInputError, "--to")
    if not Path(source).exists():
        raise InvalidInputError(f"nothing to copy: {source} does not exist")
    with closing(StateDB(source)) as src, closing(StateDB(to)) as dst:  # both migrated to the same version
        target_tables = set(_tables(dst))
        _refuse_rows_of_its_own(src, dst, set(_tables(src)))
        tables: list[dict[str, Any]] = []
        for table in sorted(_tables(src), key=lambda t: t == "log_totals"):  # the totals after the log
            if table not in target_tables:
                raise StateStoreError(f"table {table} of {src.label} is unknown to {dst.label}")
            if table == "log_totals":
                copied = _copy_totals(src, dst)
            else:
                copied = _copy_table(src, dst, table, batch_size, progress)
            tables.append(
                {"table": table, "source_rows": _count(src, table), "target_rows": _count(dst, table), "copied": copied}
            )
        _advance_identities(dst)
    short = [str(t["table"]) for t in tables if t["target_rows"] < t["source_rows"]]
    if short:
        raise StateStoreError(
            f"row counts differ after the copy: {', '.join(short)}",
            hint="run the same `db copy` again: it resumes where it stopped",
        )
    return {"source": str(source), "target": dst.label, "tables": tables}


def _shared_columns(src: StateDB, dst: StateDB, table: str) -> list[str]:
    source_cols = [r[1] for r in src.run(lambda c: c.execute(f"PRAGMA table_info({table})").fetchall())]
    target_cols = {r[0] for r in dst.run(lambda c: c.execute(_COLUMNS, (table,)).fetchall())}
    return [c for c in source_cols if c in target_cols]


_SAME_ROW = {"integration_logs": "id", "messages": "correlation_id, recipient, created_at"}  # the rest: every column


def _refuse_rows_of_its_own(src: StateDB, dst: StateDB, tables: set[str]) -> None:
    """Copied rows keep their ids, and a row whose id is taken is skipped as copied before: into a database that
    numbered rows of its own from 1, the source's rows with those ids would be lost without a word.  The target's
    first row of each such table must therefore be the source's (true of an empty target and of a resumed copy),
    told by the columns that never change once written."""
    for table, column in (t for t in _identities(dst) if t[0] in tables):
        same = _SAME_ROW.get(table) or ", ".join(_shared_columns(src, dst, table))
        row = f"SELECT {same} FROM {table} WHERE {column} = ?"
        first = _read_row(dst, f"SELECT min({column}) FROM {table}")[0]
        if first is not None and _read_row(dst, row, first) != _read_row(src, row, first):
            raise InvalidInputError(
                f"{dst.label} already holds {table} rows of its own: copying would skip the source's rows "
                "numbered like them",
                hint="copy into an empty database (the copy creates the tables itself)",
            )


def _read_row(db: StateDB, sql: str, *params: Any) -> Any:
    return db.run(lambda c: c.execute(sql, params).fetchone())


def _copy_table(src: StateDB, dst: StateDB, table: str, batch_size: int, progress: Progress | None) -> int:
    columns = _shared_columns(src, dst, table)
    names = ", ".join(columns)
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
    copied = 0
    with src.read_cursor(f"SELECT {names} FROM {table}") as rows:
        while batch := rows.fetchmany(batch_size):
            with dst.write() as conn:
                if table == "integration_logs":
                    copied += totals.insert_uncounted(conn, insert, batch, columns.index("id"))
                else:
                    copied += conn.executemany(insert, batch).rowcount
            if progress:
                progress(table, copied)
    return copied


def _copy_totals(src: StateDB, dst: StateDB) -> int:
    """The source's call totals, in the target's shard for them (``totals.COPIED_SHARD``), replaced by each run.

    They count every row the source's log ever held, purged ones included, so
    they are copied rather than recounted; the log rows copied were not counted
    by the target.
    """
    columns = "service_name, status, bucket, local, count, duration_sum_ms"
    grouped = (
        "SELECT service_name, status, bucket, local, sum(count), sum(duration_sum_ms) FROM log_totals "
        "GROUP BY service_name, status, bucket, local"
    )
    rows = [tuple(r) for r in src.run(lambda c: c.execute(grouped).fetchall())]
    copied = f"SELECT {columns} FROM log_totals WHERE shard = {totals.COPIED_SHARD}"
    if set(rows) == {tuple(r) for r in dst.run(lambda c: c.execute(copied).fetchall())}:
        return 0  # copied before
    with dst.write() as conn:
        conn.execute(f"DELETE FROM log_totals WHERE shard = {totals.COPIED_SHARD}")
        conn.executemany(
            f"INSERT INTO log_totals ({columns}, shard) VALUES (?, ?, ?, ?, ?, ?, {totals.COPIED_SHARD})", rows
        )
    return len(rows)


def _identities(db: StateDB) -> list[tuple[str, str]]:
    return [
        (str(table), str(column))
        for table, column in db.run(
            lambda c: c.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE is_identity = 'YES' AND table_schema = current_schema() ORDER BY table_name"
            ).fetchall()
        )
    ]


def _advance_identities(db: StateDB) -> None:
    """Copied rows kept their ids: new rows must be numbered after them."""
    for table, column in _identities(db):
        _statement(
            db,
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), coalesce(max({column}), 0) + 1, false) "
            f"FROM {table}",
        )


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename",
}


def _tables(db: StateDB) -> list[str]:
    return [r[0] for r in db.run(lambda c: c.execute(_TABLES[db.engine]).fetchall()) if r[0] != "schema_migrations"]


def _count(db: StateDB, table: str) -> int:
    return int(db.run(lambda c: c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]))


def _statement(db: StateDB, sql: str) -> None:
    db.run(lambda c: c.execute(sql))


def _version(db: StateDB) -> int:
    done: set[int] | None = db.run(lambda c: applied_numbers(c, db.engine))
    return max(done or {0})


_COLUMNS = "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_schema = current_schema()"
