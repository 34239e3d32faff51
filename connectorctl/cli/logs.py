"""``connectorctl logs tail|list|show|purge``: what the gateway did, and keeping it bounded.

``tail -f`` follows the ``seq`` rowid (insertion order across processes), so a
poll reads only rows it has not seen, whatever other processes or a concurrent
purge do.  Row rendering lives here; queries live in ``store/queries.py``.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import (
    FIRST_SEND,
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    YesOption,
    fmt,
    grid,
    human_time,
    render,
    show,
    state,
    warn_if_unknown_service,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Read, follow and purge the integration log.")

STATUS_STYLE = {
    "success": "green",
    "failed": "red",
    "timeout": "magenta",
    "rate_limited": "yellow",
    "circuit_open": "bright_red",
}
ServiceOpt = typer.Option(None, "--service", help="Only this vendor slug, e.g. sendgrid.", metavar="SLUG")
StatusOpt = typer.Option(
    None, "--status", help="success, failed, timeout, rate_limited or circuit_open.", metavar="STATUS"
)
TenantOpt = typer.Option(None, "--tenant", help="Only this tenant id.", metavar="ID")
SinceOpt = typer.Option(None, "--since", help="Start: a duration ago (1h, 2d, -30days) or ISO 8601.", metavar="WHEN")
UntilOpt = typer.Option(None, "--until", help="End: a duration ago or ISO 8601 (default now).", metavar="WHEN")
OperationOpt = typer.Option(None, "--operation", help="Only this operation, e.g. send_email.", metavar="NAME")
CorrelationOpt = typer.Option(None, "--correlation-id", help="Only the attempts of one logical call.", metavar="ID")
STATUSES = ("success", "failed", "timeout", "rate_limited", "circuit_open")
_EMPTY_HINT = f"no log rows match; every vendor call adds one (try: {FIRST_SEND})"


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
    from connectorctl.store.queries import LogFilter
    from connectorctl.times import parse_time

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


# At 80 columns a failure's error message is worth more than its time (the id and `logs show` carry that).
LOG_COLUMNS = (
    Column("id"),
    Column("time (UTC)", drop=2),
    Column("service"),
    Column("status"),
    Column("http", drop=3, right=True),
    Column("ms", drop=4, right=True),
    Column("try", drop=5, right=True),
    Column("error", drop=1, wrap=True),
)
# `tail -f` pins the widths, so that the batches it prints line up under the first header
FOLLOW_WIDTHS = (26, 19, 10, 12, 4, 6, 3, 0)


def rows_table(
    rows: list[dict[str, Any]], *, title: str | None = None, header: bool = True, widths: tuple[int, ...] | None = None
) -> Any:
    from rich.markup import escape

    return grid(
        title,
        LOG_COLUMNS,
        (
            (
                r["id"],
                human_time(r["created_at"]),
                escape(r["service_name"]),
                _styled(r["status"]),
                show(r["http_status_code"]),
                show(r["duration_ms"]),
                show(r.get("attempt_number")),
                escape(r.get("error_message") or ""),
            )
            for r in rows
        ),
        header=header,
        widths=widths,
    )


def _machine(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from connectorctl.store.queries import log_entry

    return [log_entry(dict(r)) for r in rows]


@app.command("tail")
def logs_tail(
    ctx: typer.Context,
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep printing new rows as any process writes them (Ctrl-C stops)."
    ),
    lines: int = typer.Option(
        20, "--limit", "-n", "--lines", help="How many recent rows to show first.", min=0, metavar="N"
    ),
    service: Optional[str] = ServiceOpt,
    status: Optional[str] = StatusOpt,
    tenant: Optional[str] = TenantOpt,
    since: Optional[str] = SinceOpt,
    until: Optional[str] = UntilOpt,
    interval: float = typer.Option(
        0.5, "--interval", help="Seconds between polls with -f.", min=0.05, max=3600, metavar="SECONDS"
    ),
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
    if out is OutputFormat.table and not rows and not follow:
        stderr().print(_EMPTY_HINT, highlight=False)
    elif out is OutputFormat.table:
        stdout().print(rows_table(rows, widths=FOLLOW_WIDTHS if follow else None))
    else:
        render(out, _machine(rows), lambda: None)
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
                stdout().print(rows_table(new, header=False, widths=FOLLOW_WIDTHS))
            else:
                render(out, _machine(new), lambda: None)
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
        None, "--delivery", help="Only sends a vendor reported in this state: delivered, bounced, ...", metavar="STATE"
    ),
    limit: int = typer.Option(100, "--limit", "-n", help="Rows per page (max 500).", metavar="N"),
    offset: int = typer.Option(0, "--offset", help="Rows to skip (pagination).", metavar="N"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Log rows, newest first, with the same shape as GET /api/connector/logs."""
    from connectorctl.cli.output import stderr
    from connectorctl.store.queries import check_limit, list_logs

    check_limit(limit, offset)
    flt = build_filter(service, status, tenant, since, until, operation, correlation_id, delivery)
    connector = state(ctx).connector()
    warn_if_unknown_service(connector, service)
    rows = list_logs(connector.db, flt, limit, offset)
    out = fmt(output, as_json)
    if out is OutputFormat.json:  # the GET /api/connector/logs page; jsonl streams the same row objects
        render(
            out, {"data": _machine(rows), "meta": {"limit": limit, "offset": offset, "count": len(rows)}}, lambda: None
        )
    elif out is OutputFormat.table and not rows:
        stderr().print(_EMPTY_HINT if offset == 0 else f"no rows at offset {offset}", highlight=False)
    else:
        render(out, _machine(rows), lambda: rows_table(rows, title=f"{len(rows)} rows (offset {offset})"))


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
    from connectorctl.store.queries import get_log, log_entry

    row = get_log(state(ctx).connector().db, log_id.strip())
    if row is None:
        raise fail(
            "not_found", f"no log row with id {log_id!r}", ExitCode.FAILED, "list ids with: connectorctl logs list"
        )
    entry = log_entry(dict(row))

    def table() -> Any:
        from connectorctl.cli.output import styled

        pairs = []
        for k, v in entry.items():
            if k == "status":
                v = styled(_styled(v))
            elif k == "created_at":
                v = human_time(v) + " UTC"
            elif isinstance(v, (dict, list)):
                v = json.dumps(v, indent=2, ensure_ascii=False)
            pairs.append((k, v))
        return kv_table(f"log {row['id']}", pairs)

    render(fmt(output, as_json), entry, table)


@app.command("purge")
def logs_purge(
    ctx: typer.Context,
    days: Optional[int] = typer.Option(
        None, "--days", help="Keep this many days (default: log_retention_days, 90).", metavar="N"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count what would be deleted."),
    batch_size: int = typer.Option(
        5000, "--batch-size", help="Rows per delete transaction.", min=1, max=100000, metavar="N"
    ),
    vacuum: bool = typer.Option(
        False, "--vacuum", help="Afterwards VACUUM to shrink the file (rewrites it; blocks writers meanwhile)."
    ),
    yes: bool = YesOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete log rows older than the retention period, in short batches (asks first; --yes in scripts)."""
    from connectorctl.cli.output import confirm, kv_table
    from connectorctl.store.queries import purge_logs
    from connectorctl.store.retention import cutoff_for

    connector = state(ctx).connector()
    keep = days if days is not None else connector.settings.log_retention_days
    if not dry_run:
        cutoff_for(keep)  # a bad --days is refused before anyone is asked
        confirm(f"delete every log row older than {keep} days?", yes)
    result = purge_logs(connector.db, keep, dry_run=dry_run, batch_size=batch_size, vacuum=vacuum)
    title = f"would delete {result['would_delete']} rows" if dry_run else f"deleted {result['deleted']} rows"
    render(
        fmt(output, as_json), result, lambda: kv_table(f"{title} older than {result['cutoff']}", list(result.items()))
    )
