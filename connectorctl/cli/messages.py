"""``connectorctl messages show|list``: what became of what we sent, from the vendors' delivery reports."""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import JsonOption, OutputFormat, OutputOption, fmt, render, state

app = typer.Typer(
    help="Sent messages and their delivery timelines (attempts, acceptance, vendor reports).", no_args_is_help=True
)

STATE_STYLE = {
    "delivered": "green",
    "opened": "green",
    "clicked": "green",
    "sent": "cyan",
    "queued": "cyan",
    "deferred": "yellow",
    "bounced": "red",
    "rejected": "red",
    "failed": "red",
    "undelivered": "red",
    "complained": "bright_red",
    "unsubscribed": "magenta",
}
KIND_STYLE = {"attempt": "dim", "accepted": "cyan", "event": "white"}


def _when(iso: str | None) -> str:
    """``2026-12-05 10:46:00``: the stored UTC time without milliseconds, so tables fit 80 columns."""
    return iso[:19].replace("T", " ") if iso else "-"


def _styled(value: str | None, styles: dict[str, str]) -> str:
    if not value:
        return "-"
    style = styles.get(value.split(" ")[0], "white")
    return f"[{style}]{value}[/{style}]"


@app.command("show")
def messages_show(
    ctx: typer.Context,
    ident: str = typer.Argument(..., metavar="ID", help="Our correlation id or the vendor's message id."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """The timeline of one send: attempts, vendor, acceptance per recipient, then delivery events in order."""
    from connectorctl.cli.output import fail
    from connectorctl.delivery.queries import timeline
    from connectorctl.errors import ExitCode

    found = timeline(state(ctx).connector().db, ident.strip())
    if found is None:
        raise fail(
            "not_found",
            f"no sent message with id {ident!r}",
            ExitCode.FAILED,
            "list them with: connectorctl messages list",
        )
    data = found.to_dict()
    render(fmt(output, as_json), data, lambda: _timeline_view(data))


def _timeline_view(data: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    states = Table(title=f"message {data['correlation_id']}", box=None, pad_edge=False)
    for col in ("recipient", "vendor", "delivery", "since", "reason"):
        states.add_column(
            col, overflow="fold", no_wrap=col in ("delivery", "since"), ratio=1 if col == "reason" else None
        )
    for m in data["messages"]:
        states.add_row(
            m["recipient"],
            m["vendor"],
            _styled(m["delivery"] or "no report yet", STATE_STYLE),
            _when(m["delivery_at"]),
            escape(m["delivery_reason"] or ""),
        )
    entries = Table(title="timeline (UTC)", box=None, pad_edge=False)
    for col in ("at", "kind", "vendor", "recipient", "what", "detail"):
        entries.add_column(col, overflow="fold", no_wrap=col in ("at", "kind"), ratio=1 if col == "detail" else None)
    for e in data["timeline"]:
        entries.add_row(
            _when(e["at"]),
            _styled(e["kind"], KIND_STYLE),
            e["vendor"],
            e["recipient"] or "",
            _styled(e["what"], STATE_STYLE),
            escape(e["detail"] or ""),
        )
    return Group(states, entries) if data["messages"] else entries


@app.command("list")
def messages_list(
    ctx: typer.Context,
    delivery: Optional[str] = typer.Option(
        None, "--delivery", help="Only messages in this state: delivered, bounced, complained, ... or none."
    ),
    vendor: Optional[str] = typer.Option(None, "--vendor", help="Only this vendor slug."),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant id."),
    since: Optional[str] = typer.Option(None, "--since", help="Sent at or after: a duration ago (1h, 2d) or ISO 8601."),
    limit: int = typer.Option(100, "--limit", help="Rows per page (max 500)."),
    offset: int = typer.Option(0, "--offset", help="Rows to skip (pagination)."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Sent messages, newest first, one row per recipient with its furthest delivery state."""
    from connectorctl.delivery.queries import MessageFilter, list_messages
    from connectorctl.store.queries import parse_time

    flt = MessageFilter(
        vendor=vendor, tenant_id=tenant, delivery=delivery, since=parse_time(since, name="--since") if since else None
    )
    rows = list_messages(state(ctx).connector().db, flt, limit, offset)
    render(fmt(output, as_json), rows, lambda: _list_view(rows))


def _list_view(rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(rows)} messages (UTC; vendor message ids with -o json)", box=None, pad_edge=False)
    for col in ("sent", "vendor", "recipient", "delivery", "correlation id"):
        table.add_column(col, overflow="fold", no_wrap=col != "recipient", ratio=1 if col == "recipient" else None)
    for r in rows:
        table.add_row(
            _when(r["created_at"]),
            r["vendor"],
            r["recipient"],
            _styled(r["delivery"], STATE_STYLE),
            r["correlation_id"],
        )
    return table
