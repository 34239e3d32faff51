"""``connectorctl logs tail|list|show|purge``: what the gateway did, and keeping it bounded.

``tail -f`` follows the ``seq`` rowid (insertion order across processes), so a
poll reads only rows it has not seen, whatever other processes or a concurrent
purge do.  Row rendering lives here; queries live in ``store/queries.py``.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import JsonOption, OutputFormat, OutputOption, fmt, render, state, warn_if_unknown_service

app = typer.Typer(help="Read, follow and purge the integration log.", no_args_is_help=True)

STATUS_STYLE = {
    "success": "green",
    "failed": "red",
    "timeout": "magenta",
    "rate_limited": "yellow",
    "circuit_open": "bright_red",
}
ServiceOpt = typer.Option(None, "--service", help="Only this vendor slug, e.g. sendgrid.")
StatusOpt = typer.Option(None, "--status", help="success, failed, timeout, rate_limited or circuit_open.")
TenantOpt = typer.Option(None, "--tenant", help="Only this tenant id.")
SinceOpt = typer.Option(None, "--since", help="Start: a duration ago (1h, 2d, -30days) or ISO 8601.")
UntilOpt = typer.Option(None, "--until", help="End: a duration ago or ISO 8601 (default now).")
OperationOpt = typer.Option(None, "--operation", help="Only this operation, e.g. send_email.")
CorrelationOpt = typer.Option(None, "--correlation-id", help="Only the attempts of one logical call.")
STATUSES = ("success", "failed", "timeout", "rate_limited", "circuit_open")


def build_filter(
    service: Optional[str],
    status: Optional[str],
    tenant: Optional[str],
    since: Optional[str],
    until: Optional[str],
    operation: Optional[str] = None,
    correlation_id: Optional[str] = None,
    delivery: Optional[str] = None,
) -> Any:
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.queries import LogFilter, parse_time

    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"unknown --status {status!r} (use one of: {', '.join(STATUSES)})")
    start = parse_time(since, name="--since") if since else None
    end = parse_time(until, name="--until") if until else None
    if start and end and end < start:
        raise InvalidInputError("--until is before --since")
    if delivery is not None:
        from connectorctl.delivery.queries import MessageFilter

        MessageFilter(delivery=delivery).where()  # one message for an unknown state
    return LogFilter(
        service=service,
        status=status,
        tenant_id=tenant,
        since=start,
        until=end,
        operation=operation,
        correlation_id=correlation_id,
        delivery=delivery,
    )


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status, "white")
    return f"[{style}]{status}[/{style}]"


def rows_table(rows: list[dict[str, Any]], *, title: str | None = None, header: bool = True) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_header=header, box=None, pad_edge=False)
    # fixed widths so that the batches printed by `tail -f` line up under the first header
    for name, width in (("created_at", 23), ("service", 10), ("status", 12), ("http", 4), ("ms", 6), ("try", 3)):
        table.add_column(name, width=width, no_wrap=True, justify="right" if name in ("http", "ms", "try") else "left")
    table.add_column("id", min_width=26, no_wrap=True)
    table.add_column("error", ratio=1)
    for r in rows:
        table.add_row(
            r["created_at"].replace("T", " ").rstrip("Z"),
            r["service_name"],
            _styled(r["status"]),
            str(r["http_status_code"] or "-"),
            str(r["duration_ms"]),
            str(r.get("attempt_number") or ""),
            r["id"],
            escape(r.get("error_message") or ""),
        )
    return table


@app.command("tail")
def logs_tail(
    ctx: typer.Context,
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new rows as any process writes them (Ctrl-C stops)."
    ),
    lines: int = typer.Option(20, "--lines", "-n", help="How many recent rows to show first.", min=0),
    service: Optional[str] = ServiceOpt,
    status: Optional[str] = StatusOpt,
    tenant: Optional[str] = TenantOpt,
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    interval: float = typer.Option(0.5, "--interval", help="Seconds between polls with -f.", min=0.05, max=3600),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """The latest log rows, newest last; with -f, follow new ones."""
    import time

    from connectorctl.cli.output import stderr, stdout
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.queries import logs_after, tail_logs

    out = fmt(output, as_json)
    if follow and out is OutputFormat.json:
        raise InvalidInputError("-o json cannot stream; use -o jsonl with --follow")
    flt = build_filter(service, status, tenant, since, until)
    connector = state(ctx).connector()
    warn_if_unknown_service(connector, service)
    rows, cursor = tail_logs(connector.db, flt, lines)
    if out is OutputFormat.table:
        stdout().print(rows_table(rows))
    else:
        render(out, rows, lambda: None)
    if not follow:
        return
    stderr().print("following new rows (Ctrl-C to stop)", highlight=False)
    try:
        while True:
            time.sleep(interval)
            new, cursor = logs_after(connector.db, flt, cursor)
            if not new:
                continue
            if out is OutputFormat.table:
                stdout().print(rows_table(new, header=False))
            else:
                render(out, new, lambda: None)
    except KeyboardInterrupt:
        return  # the normal way to stop following: exit 0, no traceback


@app.command("list")
def logs_list(
    ctx: typer.Context,
    service: Optional[str] = ServiceOpt,
    status: Optional[str] = StatusOpt,
    tenant: Optional[str] = TenantOpt,
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    operation: Optional[str] = OperationOpt,
    correlation_id: Optional[str] = CorrelationOpt,
    delivery: Optional[str] = typer.Option(
        None, "--delivery", help="Only sends a vendor reported in this state: delivered, bounced, ..."
    ),
    limit: int = typer.Option(100, "--limit", help="Rows per page (max 500)."),
    offset: int = typer.Option(0, "--offset", help="Rows to skip (pagination)."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Log rows, newest first, with the same shape as GET /api/connector/logs."""
    from connectorctl.store.queries import SUMMARY_COLUMNS, check_limit, list_logs

    check_limit(limit, offset)
    flt = build_filter(service, status, tenant, since, until, operation, correlation_id, delivery)
    connector = state(ctx).connector()
    warn_if_unknown_service(connector, service)
    rows = list_logs(connector.db, flt, limit, offset)
    out = fmt(output, as_json)
    if out is OutputFormat.json:
        data = [{k: r[k] for k in SUMMARY_COLUMNS} for r in rows]
        render(out, {"data": data, "meta": {"limit": limit, "offset": offset, "count": len(data)}}, lambda: None)
    else:
        render(out, rows, lambda: rows_table(rows, title=f"{len(rows)} rows (offset {offset})"))


@app.command("show")
def logs_show(
    ctx: typer.Context,
    log_id: str = typer.Argument(..., metavar="ID", help="The row's id (ULID)."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """One full row, including its (already redacted) request and response data."""
    import json

    from connectorctl.cli.output import fail, kv_table
    from connectorctl.errors import ExitCode
    from connectorctl.store.queries import get_log

    row = get_log(state(ctx).connector().db, log_id.strip())
    if row is None:
        raise fail(
            "not_found", f"no log row with id {log_id!r}", ExitCode.FAILED, "list ids with: connectorctl logs list"
        )
    out = fmt(output, as_json)
    for key in ("request_data", "response_data"):
        if out is not OutputFormat.table and isinstance(row[key], str):
            try:
                row[key] = json.loads(row[key])
            except ValueError:
                pass

    def table() -> Any:
        pairs = []
        for k, v in row.items():
            if k == "status":
                v = _styled(v)
            elif k in ("request_data", "response_data") and isinstance(v, str):
                try:
                    v = json.dumps(json.loads(v), indent=2)
                except ValueError:
                    pass
            pairs.append((k, v))
        return kv_table(f"log {row['id']}", pairs)

    render(out, row, table)


@app.command("purge")
def logs_purge(
    ctx: typer.Context,
    days: Optional[int] = typer.Option(None, "--days", help="Keep this many days (default: log_retention_days, 90)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
    batch_size: int = typer.Option(5000, "--batch-size", help="Rows per delete transaction.", min=1, max=100000),
    vacuum: bool = typer.Option(
        False, "--vacuum", help="Afterwards VACUUM to shrink the file (rewrites it; blocks writers meanwhile)."
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete log rows older than the retention period, in short batches (safe beside live traffic)."""
    from connectorctl.cli.output import kv_table
    from connectorctl.store.queries import purge_logs

    connector = state(ctx).connector()
    keep = days if days is not None else connector.settings.log_retention_days
    result = purge_logs(connector.db, keep, dry_run=dry_run, batch_size=batch_size, vacuum=vacuum)
    title = f"would delete {result['would_delete']} rows" if dry_run else f"deleted {result['deleted']} rows"
    render(
        fmt(output, as_json), result, lambda: kv_table(f"{title} older than {result['cutoff']}", list(result.items()))
    )
