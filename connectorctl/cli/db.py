"""``connectorctl db migrate|check|drain-spool|copy``: the state database itself (SQLite file or shared PostgreSQL)."""

from __future__ import annotations

from typing import Any

import typer

from connectorctl.cli.output import Column, JsonOption, OutputFormat, OutputOption, fmt, grid, kv_table, render, state
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="The state database: apply migrations, check it, drain the audit spool, copy it to PostgreSQL.")


def _tables_view(title: str, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> Any:
    return grid(
        title, tuple(Column(c, right=c != "table") for c in columns), ((*(str(r[c]) for c in columns),) for r in rows)
    )


@app.command("migrate")
def db_migrate(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Apply pending schema migrations now (every host also applies them on start, once, under a lock)."""
    from connectorctl.store.admin import migrate

    result = migrate(state(ctx).settings().database)
    pairs = [
        ("database", result["database"]),
        ("engine", result["engine"]),
        ("applied", ", ".join(map(str, result["applied"])) or "nothing pending"),
        ("schema version", result["schema_version"]),
    ]
    render(fmt(output, as_json), result, lambda: kv_table("db migrate", pairs))


@app.command("check")
def db_check(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Reach the database: round trip, schema version, pending migrations, rows per table (exit 6 when unusable).

    Log rows waiting in the audit spool are moved into the database first.
    """
    from connectorctl.store.admin import check

    settings = state(ctx).settings()
    result = check(settings.database, _spool(settings))
    rows = [{"table": name, "rows": count} for name, count in result["tables"].items()]

    def view() -> Any:
        from rich.console import Group

        pairs = [(k, v) for k, v in _flat(result).items() if k != "tables"]
        return Group(kv_table("db check", pairs), _tables_view("tables", rows, ("table", "rows")))

    render(fmt(output, as_json), result, view)


@app.command("drain-spool")
def db_drain_spool(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Move log rows that waited in the local audit spool (the database refused them) into the database.

    Sends do this by themselves once the database answers, and so do `serve`, `outbox work` and `db check`;
    run it after a process that spooled rows has exited.  Exit 6 while the database still refuses them.
    """
    from connectorctl.store.admin import drain_spool

    settings = state(ctx).settings()
    result = drain_spool(settings.database, _spool(settings))
    pairs = [(k.replace("_", " "), v) for k, v in _flat(result).items()]
    render(fmt(output, as_json), result, lambda: kv_table("db drain-spool", pairs))


def drain_spool_at_start(connector: Any) -> None:
    """What a long-running command does first: rows spooled by processes that have exited go in now.

    A database that still refuses does not stop the command; its own sends will drain the spool later.
    """
    from connectorctl.cli.output import stderr
    from connectorctl.errors import StateStoreError
    from connectorctl.store.spool import log_rows

    try:
        moved = connector.drain_audit_spool()
    except StateStoreError as exc:
        stderr().print(
            f"connectorctl: warning: audit spool not drained: {exc.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    if moved:
        stderr().print(f"connectorctl: {log_rows(moved, 'spooled log')} moved into the database", highlight=False)


def _flat(result: dict[str, Any]) -> dict[str, Any]:
    """The ``audit_spool`` object as two lines of the table (its ``error`` is None: an unreadable spool exits 6)."""
    spool = result.get("audit_spool")
    if spool is None:  # the database has no schema yet: nothing was drained
        return result
    return {
        **{k: v for k, v in result.items() if k != "audit_spool"},
        "audit_spool": spool["path"],
        "spooled_rows": spool["rows"],
    }


def _spool(settings: Any) -> Any:
    from connectorctl.store.spool import AuditSpool, spool_path

    return AuditSpool(spool_path(settings))


@app.command("copy")
def db_copy(
    ctx: typer.Context,
    to: str = typer.Option(
        ...,
        "--to",
        help="Target: postgresql://user@host:port/dbname (password in PGPASSWORD or ~/.pgpass).",
        metavar="URL",
    ),
    batch_size: int = typer.Option(5000, "--batch-size", help="Rows per transaction.", min=1, max=100_000, metavar="N"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Copy this installation's SQLite state into PostgreSQL: resumable (run it again), row counts verified."""
    from connectorctl.cli.output import stderr
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.admin import copy
    from connectorctl.store.db import is_database_url

    source = state(ctx).settings().database
    if is_database_url(source):
        raise InvalidInputError("`database:` is already PostgreSQL: db copy moves a SQLite installation")
    if is_database_url(to) and "@" in to.split("//", 1)[1] and ":" in to.split("//", 1)[1].split("@", 1)[0]:
        raise InvalidInputError(
            "--to carries a password, which other users can read in the process list",
            hint="leave it out of the URL and set PGPASSWORD or use ~/.pgpass",
        )

    def progress(table: str, copied: int) -> None:
        stderr().print(f"{table}: {copied} rows copied", highlight=False)

    result = copy(source, to, batch_size=batch_size, progress=progress)
    render(
        fmt(output, as_json),
        result,
        lambda: _tables_view(
            f"copied to {result['target']}", result["tables"], ("table", "source_rows", "target_rows")
        ),
    )
