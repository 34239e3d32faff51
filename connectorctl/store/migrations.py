"""Forward-only, numbered schema migrations, applied on open and recorded.

Each migration is a function over a ``sqlite_utils.Database`` (on PostgreSQL,
``store/pg_schema.py``'s stand-in that emits PostgreSQL DDL) inside one
``BEGIN IMMEDIATE`` transaction, so two processes (or hosts) opening a fresh
database at once cannot both apply it.  Never edit a migration that has shipped: add one.
Numbers are grouped by area so parallel work does not collide: 1-9 core,
10-19 credentials, 20-29 webhooks, 30-39 operations, 40-49 bulk,
50-59 write-ahead intents and payments, 60-69 shipping, 70-79 delivery tracking,
80-89 the outbox, 90-99 inbound mail.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

Migration = tuple[int, str, Callable[[Any], None]]
MIGRATIONS: list[Migration] = []


def migration(number: int, name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def register(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        MIGRATIONS.append((number, name, fn))
        return fn

    return register


@migration(1, "integration_logs")
def _integration_logs(db: Any) -> None:
    db["integration_logs"].create(
        {
            "seq": int,
            "id": str,
            "tenant_id": str,
            "service_name": str,
            "operation": str,
            "endpoint": str,
            "method": str,
            "status": str,
            "http_status_code": int,
            "duration_ms": int,
            "request_data": str,
            "response_data": str,
            "error_message": str,
            "error_code": str,
            "attempt_number": int,
            "correlation_id": str,
            "direction": str,
            "created_at": str,
        },
        pk="seq",
        not_null={"id", "service_name", "status", "duration_ms", "attempt_number", "created_at"},
        defaults={"direction": "outbound", "operation": ""},
    )
    logs = db["integration_logs"]
    logs.create_index(["id"], index_name="ux_logs_id", unique=True)
    # Covers the reference index (service_name, created_at) and answers metrics without touching the table.
    logs.create_index(
        ["service_name", "created_at", "status", "duration_ms", "http_status_code", "attempt_number"],
        index_name="ix_logs_service_time_cover",
    )
    logs.create_index(["service_name", "status", "created_at"], index_name="ix_logs_service_status_time")
    logs.create_index(["tenant_id", "service_name", "created_at"], index_name="ix_logs_tenant_service_time")
    logs.create_index(["created_at"], index_name="ix_logs_time")
    db.execute("CREATE INDEX ix_logs_correlation ON integration_logs(correlation_id) WHERE correlation_id IS NOT NULL")


@migration(2, "circuit_state")
def _circuit_state(db: Any) -> None:
    db["circuit_state"].create(
        {
            "service_name": str,
            "state": str,
            "consecutive_failures": int,
            "opened_at": float,
            "open_until": float,
            "probe_lease_until": float,
            "forced_until": float,
            "reason": str,
            "updated_by": str,
            "updated_at": float,
            "window_start": float,
            "window_calls": int,
            "window_failures": int,
        },
        pk="service_name",
        not_null={"state"},
        defaults={"state": "closed", "consecutive_failures": 0, "window_calls": 0, "window_failures": 0},
    )
    db["circuit_events"].create(
        {
            "id": int,
            "service_name": str,
            "action": str,
            "previous_state": str,
            "new_state": str,
            "actor": str,
            "reason": str,
            "created_at": float,
        },
        pk="id",
    )
    db["circuit_events"].create_index(["service_name", "created_at"], index_name="ix_circuit_events_service")


@migration(3, "rate_limit_buckets")
def _rate_limit_buckets(db: Any) -> None:
    db["rate_limit_buckets"].create(
        {"service_name": str, "window_seconds": float, "window_start": float, "count": int},
        pk=("service_name", "window_seconds"),
    )


@migration(4, "covering index with direction")
def _cover_direction(db: Any) -> None:
    # Inbound webhook deliveries share the table; metrics and status count outbound calls only,
    # so the covering index must answer "direction = 'outbound'" without touching the table.
    db.execute("DROP INDEX IF EXISTS ix_logs_service_time_cover")
    db.execute(
        "CREATE INDEX ix_logs_service_time_cover ON integration_logs "
        "(service_name, created_at, status, duration_ms, http_status_code, attempt_number, direction)"
    )


@migration(5, "purged log totals")
def _purged_totals(db: Any) -> None:
    # What purges deleted, per service, status, latency bucket and rate-limit source; the base of migration 8.
    db.execute(
        "CREATE TABLE IF NOT EXISTS log_totals_purged (service_name TEXT NOT NULL, status TEXT NOT NULL, "
        "bucket INTEGER NOT NULL, local INTEGER NOT NULL, count INTEGER NOT NULL, duration_sum_ms INTEGER NOT NULL, "
        "PRIMARY KEY (service_name, status, bucket, local)) WITHOUT ROWID"
    )


@migration(6, "tenant index on tenant rows only")
def _tenant_rows_only(db: Any) -> None:
    # Lookups by tenant always name one (``tenant_id = ?`` implies NOT NULL, so SQLite uses a partial
    # index).  Rows without a tenant, all of them in a single-tenant installation, no longer each
    # write an index entry: about a tenth of the cost of logging a call.
    db.execute("DROP INDEX IF EXISTS ix_logs_tenant_service_time")
    db.execute(
        "CREATE INDEX ix_logs_tenant_service_time ON integration_logs (tenant_id, service_name, created_at) "
        "WHERE tenant_id IS NOT NULL"
    )


@migration(7, "log totals checkpoint")
def _totals_checkpoint(db: Any) -> None:
    # A server's saved fold of the log; dropped by migration 8.
    db.execute(
        "CREATE TABLE IF NOT EXISTS log_totals_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), "
        "last_seq INTEGER NOT NULL, purged INTEGER NOT NULL, totals TEXT NOT NULL)"
    )


@migration(8, "log totals at write time")
def _totals_at_write_time(db: Any) -> None:
    from connectorctl.store.totals import count_at_write_time

    count_at_write_time(db)


@migration(9, "circuit changes announced on PostgreSQL")
def _circuit_notify(db: Any) -> None:
    # Every process caches the circuit rows.  On PostgreSQL a host learns that another changed them from
    # this NOTIFY, sent inside the transaction that wrote the row, whoever wrote it (a breaker, an
    # operator's `circuit trip`, `db copy`).  SQLite's processes share a counter file instead.
    if getattr(db, "engine", "sqlite") != "postgresql":
        return
    db.execute(
        "CREATE FUNCTION connectorctl_circuit_changed() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN PERFORM pg_notify('connectorctl_circuit', ''); RETURN NULL; END$$"
    )
    db.execute(
        "CREATE TRIGGER circuit_state_changed AFTER INSERT OR UPDATE OR DELETE ON circuit_state "
        "FOR EACH ROW EXECUTE FUNCTION connectorctl_circuit_changed()"
    )


@migration(30, "failure breakdown from the status index")
def _status_index_with_http_status(db: Any) -> None:
    # `metrics` breaks failures down by status and HTTP class.  With the HTTP status in this index that
    # reads only the failed rows of the service and period, from the index alone; before, it walked every
    # call of the period a second time (on a busy service as long as the whole histogram pass).
    # Rebuilding it takes a few seconds per million log rows, once, while the migration holds the write lock.
    db.execute("DROP INDEX IF EXISTS ix_logs_service_status_time")
    db.execute(
        "CREATE INDEX ix_logs_service_status_time ON integration_logs (service_name, status, created_at, "
        "http_status_code)"
    )
    # A database that has planner statistics (ANALYZE, `PRAGMA optimize`) keeps them for every other index; a
    # rebuilt index without any looks cheaper than it is and takes over `logs list --service` (100x slower).
    if (
        getattr(db, "engine", "sqlite") == "sqlite"
        and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
    ):
        db.execute("ANALYZE ix_logs_service_status_time")


@migration(31, "log visibility kept fresh on PostgreSQL")
def _log_autovacuum(db: Any) -> None:
    # `metrics` and `status` read the log from covering indexes without touching the table, but only
    # where PostgreSQL's visibility map marks the table pages all-visible, which only (auto)vacuum does.
    # By default an append-only table is vacuumed after 20 % of it was inserted: until then up to a sixth
    # of the log is unmarked, the planner prices the covering scan above walking the time index through
    # the table (every service's rows of the period), and a busy service's metrics take several times
    # longer.  Vacuuming after 1 % keeps the map within about 1 %; each such run reads only the new pages.
    if getattr(db, "engine", "sqlite") != "postgresql":
        return
    db.execute("ALTER TABLE integration_logs SET (autovacuum_vacuum_insert_scale_factor = 0.01)")


def _load_area_migrations() -> None:
    """Import modules that register their own migrations (credentials, webhooks, ...)."""
    import importlib

    for module in (
        "connectorctl.credentials.schema",
        "connectorctl.webhooks.schema",
        "connectorctl.bulk.schema",
        "connectorctl.store.intents",
        "connectorctl.payments.records",
        "connectorctl.delivery.schema",
        "connectorctl.shipping.records",
        "connectorctl.outbox.store",
        "connectorctl.inbound.schema",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module and not module.startswith(f"{exc.name}."):  # area (or its package) not present
                raise


def apply_migrations(conn: Any, engine: str = "sqlite") -> list[int]:
    """Apply what is missing, once, even when several processes (or hosts) open the database together;
    returns the numbers this call applied.

    Both engines take the cross-process write lock first (SQLite's ``BEGIN
    IMMEDIATE``; an advisory lock on PostgreSQL) and then re-read what is applied.
    """
    _load_area_migrations()
    wanted = sorted(MIGRATIONS, key=lambda m: m[0])
    applied = applied_numbers(conn, engine)
    if applied is not None and all(m[0] in applied for m in wanted):
        return []
    if engine == "postgresql":
        from connectorctl.store.pg_schema import PgSchema

        db: Any = PgSchema(conn)
    else:
        import sqlite_utils

        db = sqlite_utils.Database(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (number INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "applied_at TEXT NOT NULL)"
        )
        applied = applied_numbers(conn, engine) or set()
        done = []
        for number, name, fn in wanted:
            if number in applied:
                continue
            fn(db)
            done.append(number)
            conn.execute(
                "INSERT INTO schema_migrations (number, name, applied_at) VALUES (?, ?, ?)",
                (number, name, datetime.now(timezone.utc).isoformat()),
            )
        conn.execute("COMMIT")
        return done
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


_CATALOG = {
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE name = 'schema_migrations'",
    "postgresql": "SELECT count(*) FROM pg_tables WHERE tablename = 'schema_migrations' AND schemaname = "
    "current_schema()",
}


def applied_numbers(conn: Any, engine: str) -> set[int] | None:
    """Numbers already applied; None before the first migration (no ``schema_migrations`` table yet)."""
    exists = conn.execute(_CATALOG[engine]).fetchone()[0]
    if not exists:
        return None
    return {row[0] for row in conn.execute("SELECT number FROM schema_migrations")}
