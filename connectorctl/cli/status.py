"""``connectorctl status``: healthy / degraded / down per service, with an exit code for monitoring."""

from __future__ import annotations

from typing import Any

import typer

from connectorctl.cli.output import JsonOption, OutputFormat, OutputOption, fmt, render, state

HEALTH_STYLE = {"healthy": "green", "degraded": "yellow", "down": "red"}


def status_command(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Each configured service's health from its recent success rate and circuit; exits 7 if any is down."""
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


def _table(data: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"status over the last {data['window_minutes']} min ({data['timestamp']})")
    for name in ("service", "status", "success %", "calls", "avg ms", "p95 ms", "circuit"):
        table.add_column(name, justify="right" if name in ("success %", "calls", "avg ms", "p95 ms") else "left")
    for name, s in data["services"].items():
        style = HEALTH_STYLE[s["status"]]
        table.add_row(
            name,
            f"[{style}]{s['status']}[/{style}]",
            "-" if s["success_rate"] is None else f"{s['success_rate']:.2f}",
            str(s["calls"]),
            "-" if s["avg_duration_ms"] is None else f"{s['avg_duration_ms']:.1f}",
            "-" if s["p95_ms"] is None else str(s["p95_ms"]),
            s["circuit_state"],
        )
    return table
