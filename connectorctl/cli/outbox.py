"""``connectorctl outbox work|list|show|retry|drop|purge``: run and operate the outbox (docs/outbox.md)."""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    fmt,
    grid,
    human_time,
    kv_table,
    render,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="The outbox: messages accepted now, delivered by workers when a vendor can take them.")
STATUSES = ("queued", "retrying", "sending", "uncertain", "dead", "sent", "dropped")
STATUS_STYLE = {
    "sent": "green",
    "queued": "cyan",
    "retrying": "yellow",
    "sending": "cyan",
    "uncertain": "magenta",
    "dead": "red",
}


def _store(ctx: typer.Context) -> Any:
    from connectorctl.outbox.store import OutboxStore

    connector = state(ctx).connector()
    return OutboxStore(connector.db, connector.clock)


@app.command("work")
def outbox_work(
    ctx: typer.Context,
    once: bool = typer.Option(False, "--once", help="Deliver what is due now, then exit (for cron)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Messages in flight at once.", metavar="N"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Deliver queued messages until SIGTERM.

    Through each message's vendor chain; with --once, what is due now, then exit.
    """
    import signal
    import threading

    from connectorctl.cli.db import drain_spool_at_start
    from connectorctl.outbox.worker import OutboxWorker

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # finish or release what is held, then exit
    connector = state(ctx).connector()
    drain_spool_at_start(connector)
    report = OutboxWorker(connector, concurrency=concurrency, stop=stop).run(once=once).to_dict()
    render(fmt(output, as_json), report, lambda: kv_table("outbox work", [(k, str(v)) for k, v in report.items()]))


@app.command("list")
def outbox_list(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(
        None, "--status", help=f"Only this status: {', '.join(STATUSES)}.", metavar="STATUS"
    ),
    service: Optional[str] = typer.Option(
        None, "--service", help="Only messages for (or sent by) this vendor.", metavar="SLUG"
    ),
    limit: int = typer.Option(
        100, "--limit", "-n", help="Rows (max 1000), newest first.", min=1, max=1000, metavar="N"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Outbox messages, newest first."""
    from connectorctl.errors import InvalidInputError
    from connectorctl.outbox.store import OutboxStatus

    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"--status {status!r}: expected one of {', '.join(STATUSES)}")
    rows = [
        m.to_dict()
        for m in _store(ctx).list(status=OutboxStatus(status) if status else None, service=service, limit=limit)
    ]

    def table() -> Any:
        from rich.markup import escape

        columns = (
            Column("id"),
            Column("status"),
            Column("channel", drop=4),
            Column("to", drop=2),
            Column("tries", right=True, drop=3),
            Column("queued (UTC)", drop=5),
            Column("vendor", drop=1),
            Column("last error", drop=1, wrap=True),
        )
        return grid(
            f"{len(rows)} outbox messages",
            columns,
            (
                (
                    r["id"],
                    _styled(r["status"]),
                    r["channel"],
                    escape(", ".join(r["recipients"])),
                    str(r["attempts"]),
                    human_time(r["created_at"]),
                    r["vendor"] or ",".join(r["vendors"]),
                    escape(r["last_error"] or ""),
                )
                for r in rows
            ),
        )

    render(fmt(output, as_json), rows, table)


@app.command("show")
def outbox_show(
    ctx: typer.Context,
    message_id: str = typer.Argument(..., help="Outbox message id (see outbox list).", metavar="ID"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """One message and its attempt history.

    Every integration-log row written under the message's key.
    """
    connector = state(ctx).connector()
    message = _get(ctx, message_id)
    attempts = connector.integration_log.get_logs({"correlation_id": message.id}, limit=500)
    data = {**message.to_dict(), "attempt_log": list(reversed(attempts))}

    def view() -> Any:
        from rich.console import Group
        from rich.markup import escape

        facts = kv_table(
            f"outbox message {message.id}",
            [(k, escape(str(v))) for k, v in data.items() if k != "attempt_log" and v not in (None, [])],
        )
        log = grid(
            "attempts (integration log)",
            (
                Column("at (UTC)"),
                Column("vendor"),
                Column("operation", drop=3),
                Column("try", right=True),
                Column("status"),
                Column("http", drop=2),
                Column("error", drop=1, wrap=True),
            ),
            (
                (
                    human_time(a["created_at"]),
                    a["service_name"],
                    a["operation"],
                    str(a["attempt_number"]),
                    a["status"],
                    str(a["http_status_code"] or "-"),
                    escape(a["error_message"] or ""),
                )
                for a in data["attempt_log"]
            ),
        )
        return Group(facts, log)

    render(fmt(output, as_json), data, view)


@app.command("retry")
def outbox_retry(
    ctx: typer.Context,
    message_id: Optional[str] = typer.Argument(
        None, help="Message to send again now (a dead or uncertain one, or one waiting).", metavar="ID"
    ),
    dead: bool = typer.Option(False, "--dead", help="Redrive every dead message."),
    since: Optional[str] = typer.Option(
        None, "--since", help="With --dead: only messages that died since (e.g. 2h, 7d, an ISO time).", metavar="WHEN"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Queue a message again now.

    An uncertain one is re-sent without asking the vendor: that is your decision.
    """
    from connectorctl.errors import InvalidInputError

    if bool(message_id) == dead:
        raise InvalidInputError("give a message ID or --dead (not both)")
    if since and not dead:
        raise InvalidInputError("--since goes with --dead")
    store = _store(ctx)
    if dead:
        from connectorctl.times import parse_time

        count = store.retry_dead(parse_time(since, name="--since").timestamp() if since else None)
        result: dict[str, Any] = {"requeued": count}
        return render(fmt(output, as_json), result, lambda: f"{count} dead messages queued again")
    message = store.retry(message_id).to_dict()
    render(fmt(output, as_json), message, lambda: f"{message['id']}: queued again")


@app.command("drop")
def outbox_drop(
    ctx: typer.Context,
    message_id: str = typer.Argument(
        ..., help="Message to give up on (kept for the record, never sent).", metavar="ID"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Give up on a message: it is never sent.

    The row stays, as dropped.
    """
    from connectorctl.cli.output import confirm

    confirm(f"drop outbox message {message_id}? it will never be sent", yes)
    message = _store(ctx).drop(message_id).to_dict()
    render(fmt(output, as_json), message, lambda: f"{message['id']}: dropped")


@app.command("purge")
def outbox_purge(
    ctx: typer.Context,
    sent_older_than: str = typer.Option(
        ..., "--sent-older-than", help="Delete sent messages older than this (e.g. 30d).", metavar="AGE"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete sent messages older than AGE.

    Their integration-log rows stay until log retention removes them.
    """
    from connectorctl.cli.output import confirm
    from connectorctl.times import parse_duration

    seconds = parse_duration(sent_older_than, name="--sent-older-than")
    confirm(f"delete sent outbox messages older than {sent_older_than}?", yes)
    result = {"deleted": _store(ctx).purge_sent(seconds)}
    render(fmt(output, as_json), result, lambda: f"{result['deleted']} sent messages deleted")


def _get(ctx: typer.Context, message_id: str) -> Any:
    from connectorctl.cli.output import fail
    from connectorctl.errors import ExitCode

    message = _store(ctx).get(message_id)
    if message is None:
        raise fail("not_found", f"no outbox message {message_id!r}", ExitCode.FAILED, "see: connectorctl outbox list")
    return message


def _styled(value: str) -> str:
    style = STATUS_STYLE.get(value)
    return f"[{style}]{value}[/{style}]" if style else value
