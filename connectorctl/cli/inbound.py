"""``connectorctl inbound list|show|save-attachments``: mail the vendors forwarded to ``serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from connectorctl.cli.output import Column, JsonOption, OutputFormat, OutputOption, fmt, grid, human_time, render, state
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Inbound mail received on serve (POST /api/connector/inbound/{service}).")
IdArg = typer.Argument(..., help="The message id (see: connectorctl inbound list).", metavar="ID")


@app.command("list")
def inbound_list(
    ctx: typer.Context,
    service: Optional[str] = typer.Option(None, "--service", help="Only this inbound endpoint.", metavar="NAME"),
    limit: int = typer.Option(50, "--limit", "-n", help="Rows (max 500).", min=1, max=500, metavar="N"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Received messages, newest first."""
    from connectorctl.inbound.store import listing

    rows = listing(state(ctx).connector(), service=service, limit=limit)

    def table() -> object:
        from rich.markup import escape

        columns = (
            Column("id"),
            Column("received (UTC)", drop=3),
            Column("service", drop=2),
            Column("from"),
            Column("subject", wrap=True),
            Column("files", right=True, drop=1),
        )
        return grid(
            f"{len(rows)} inbound messages",
            columns,
            (
                (
                    r["id"],
                    human_time(r["received_at"]),
                    r["service"],
                    escape(r["from"]),
                    escape(r["subject"]),
                    str(r["attachments"]),
                )
                for r in rows
            ),
        )

    hint = "no inbound mail received yet; point a vendor's inbound route at `connectorctl serve` (see docs/inbound.md)"
    render(fmt(output, as_json), rows, table, empty=None if rows else hint)


@app.command("show")
def inbound_show(
    ctx: typer.Context, message_id: str = IdArg, output: OutputFormat = OutputOption, as_json: bool = JsonOption
) -> None:
    """One message: sender, recipients, verdicts, bodies and attachments."""
    from connectorctl.inbound.store import get

    message = get(state(ctx).connector(), message_id).to_dict()

    def table() -> object:
        from rich.console import Group
        from rich.markup import escape

        fields = [
            ("from", message["from"]),
            ("to", ", ".join(message["to"])),
            ("cc", ", ".join(message["cc"])),
            ("subject", message["subject"]),
            ("received", message["received_at"]),
            ("message id", message["message_id"] or ""),
            *((f"verdict: {k}", v) for k, v in message["verdicts"].items()),
            ("text", message["text"] or ""),
        ]
        head = grid(
            f"inbound message {message['id']} ({message['service']})",
            (Column("field"), Column("value", wrap=True)),
            ((name, escape(value)) for name, value in fields if value),
        )
        if not message["attachments"]:
            return head
        files = grid(
            "attachments",
            (Column("file"), Column("type"), Column("bytes", right=True)),
            ((escape(a["filename"]), a["content_type"], str(a["size"])) for a in message["attachments"]),
        )
        return Group(head, files)

    render(fmt(output, as_json), message, table)


@app.command("save-attachments")
def inbound_save_attachments(
    ctx: typer.Context,
    message_id: str = IdArg,
    directory: Path = typer.Option(
        Path("."), "--dir", help="Folder to write the files into (created if missing).", file_okay=False, metavar="DIR"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Write a message's attachments into a folder (never outside it; existing files are kept)."""
    from connectorctl.inbound.store import get, save_attachments

    connector = state(ctx).connector()
    written = save_attachments(connector, get(connector, message_id), directory)
    result = {"id": message_id, "files": [str(p) for p in written]}
    render(fmt(output, as_json), result, lambda: "\n".join(result["files"]) or "no attachments")
