"""``connectorctl messages show|list``: what became of what we sent, from the vendors' delivery reports."""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import (
    FIRST_SEND,
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    fmt,
    grid,
    human_time,
    render,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Sent messages and their delivery timelines (attempts, acceptance, vendor reports).")

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

    states = grid(
        f"message {data['correlation_id']}",
        (
            Column("recipient"),
            Column("vendor"),
            Column("delivery"),
            Column("since (UTC)"),
            Column("reason", drop=1, wrap=True),
        ),
        (
            (
                escape(m["recipient"]),
                m["vendor"],
                _styled(m["delivery"] or "no report yet", STATE_STYLE),
                human_time(m["delivery_at"]),
                escape(m["delivery_reason"] or ""),
            )
            for m in data["messages"]
        ),
    )
    entries = grid(
        "timeline",
        (
            Column("at (UTC)"),
            Column("kind"),
            Column("vendor", drop=2),
            Column("recipient", drop=3),
            Column("what"),
            Column("detail", drop=1, wrap=True),
        ),
        (
            (
                human_time(e["at"]),
                _styled(e["kind"], KIND_STYLE),
                e["vendor"],
                escape(e["recipient"] or ""),
                _styled(e["what"], STATE_STYLE),
                escape(e["detail"] or ""),
            )
            for e in data["timeline"]
        ),
    )
    return Group(states, entries) if data["messages"] else entries


@app.command("list")
def messages_list(
    ctx: typer.Context,
    delivery: Optional[str] = typer.Option(
        None,
        "--delivery",
        help="Only messages in this state: delivered, bounced, complained, ... or none.",
        metavar="STATE",
    ),
    vendor: Optional[str] = typer.Option(None, "--vendor", "--service", help="Only this vendor slug.", metavar="SLUG"),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant id.", metavar="ID"),
    since: Optional[str] = typer.Option(
        None, "--since", help="Sent at or after: a duration ago (1h, 2d) or ISO 8601.", metavar="WHEN"
    ),
    limit: int = typer.Option(100, "--limit", "-n", help="Rows per page (max 500).", metavar="N"),
    offset: int = typer.Option(0, "--offset", help="Rows to skip (pagination).", metavar="N"),
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
    filtered = offset or any((delivery, vendor, tenant, since))
    hint = (
        "no sent message matches (try fewer filters)" if filtered else f"no messages sent yet; send one: {FIRST_SEND}"
    )
    render(fmt(output, as_json), rows, lambda: _list_view(rows), empty=None if rows else hint)


def _list_view(rows: list[dict[str, Any]]) -> Any:
    from rich.markup import escape

    columns = (
        Column("sent (UTC)", drop=1),
        Column("vendor"),
        Column("recipient", wrap=True),
        Column("delivery"),
        Column("correlation id"),
    )
    return grid(
        f"{len(rows)} messages (vendor message ids with -o json)",
        columns,
        (
            (
                human_time(r["created_at"]),
                r["vendor"],
                escape(r["recipient"]),
                _styled(r["delivery"], STATE_STYLE),
                r["correlation_id"],
            )
            for r in rows
        ),
    )
