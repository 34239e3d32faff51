"""``connectorctl status``: healthy / degraded / down per service, with an exit code for monitoring.

Health is judged by logical calls: a send that succeeded after a retry is a
success.  The attempt-level success rate is shown beside it (``try ok %``).
"""

from __future__ import annotations

from typing import Any

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    fmt,
    grid,
    human_time,
    render,
    show,
    state,
)

HEALTH_STYLE = {"healthy": "green", "degraded": "yellow", "down": "red"}


def status_command(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Each service's health from its recent calls and circuit; exits 7 if any is down.

    A success after retries counts as a success.
    """
    from connectorctl.errors import ExitCode
    from connectorctl.store.queries import service_status

    connector = state(ctx).connector()
    data = service_status(connector.db, connector.settings)
    out = fmt(output, as_json)
    if out is OutputFormat.jsonl:
        render(out, [{"service": k, **v} for k, v in data["services"].items()], lambda: None)
    else:
        render(out, data, lambda: _table(data))
    if data["overall"] == "down":
        raise typer.Exit(ExitCode.SERVICE_DOWN)


COLUMNS = (
    Column("service"),
    Column("status"),
    Column("ok %", right=True),
    Column("calls", right=True),
    Column("try ok %", drop=2, right=True),
    Column("tries", drop=1, right=True),
    Column("avg ms", drop=4, right=True),
    Column("p95 ms", drop=3, right=True),
    Column("circuit"),
)


def _table(data: dict[str, Any]) -> Any:
    from rich.markup import escape

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    from rich.console import Group
    from rich.text import Text

    from connectorctl.store.spool import rows_wait

    table = grid(
        f"status over the last {data['window_minutes']} min (at {human_time(data['timestamp'])} UTC)",
        COLUMNS,
        (
            (
                escape(name),
                f"[{HEALTH_STYLE[s['status']]}]{s['status']}[/]",
                pct(s["success_rate"]),
                str(s["calls"]),
                pct(s["attempt_success_rate"]),
                str(s["attempts"]),
                show(s["avg_duration_ms"]),
                show(s["p95_ms"]),
                s["circuit_state"],
            )
            for name, s in data["services"].items()
        ),
        caption="ok %: calls that succeeded, retries included; try ok %: single attempts\n"
        + _outbox_line(data["outbox"]),
    )
    spool = data["audit_spool"]
    if spool["error"]:
        line = spool["error"]  # "audit spool <path> cannot be read (<reason>)"
    elif spool["rows"]:
        line = f"audit spool: {rows_wait(spool['rows'])} in {spool['path']} (`connectorctl db drain-spool`)"
    else:
        return table
    # plain text below the table, not in its caption: a caption is markup and folds at the table's width, and
    # the path is what the operator copies
    return Group(table, Text(line))


def _outbox_line(outbox: dict[str, Any]) -> str:
    counts = outbox["by_status"]
    oldest = outbox["oldest_age_seconds"]
    age = f", oldest {oldest:.0f} s" if oldest is not None else ""
    return f"outbox: {outbox['depth']} to deliver{age}; {counts['dead']} dead, {counts['uncertain']} uncertain"
