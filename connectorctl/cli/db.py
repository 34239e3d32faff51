"""``connectorctl db migrate|check|copy``: the state database itself (SQLite file or shared PostgreSQL)."""

from __future__ import annotations

from typing import Any

import typer

from connectorctl.cli.output import Column, JsonOption, OutputFormat, OutputOption, fmt, grid, kv_table, render, state
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="The state database: apply migrations, check it, copy it to PostgreSQL.")


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
    """Reach the database: round trip, schema version, pending migrations, rows per table (exit 6 when unusable)."""
    from connectorctl.store.admin import check

    result = check(state(ctx).settings().database)
    rows = [{"table": name, "rows": count} for name, count in result["tables"].items()]

    def view() -> Any:
        from rich.console import Group

        pairs = [(k, v) for k, v in result.items() if k != "tables"]
        return Group(kv_table("db check", pairs), _tables_view("tables", rows, ("table", "rows")))

    render(fmt(output, as_json), result, view)


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
