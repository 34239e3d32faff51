"""``connectorctl suppressions list|add|rm``: recipients a tenant's sends are refused for, and why."""

from __future__ import annotations

from typing import Optional

import typer

from connectorctl.cli.output import Column, JsonOption, OutputFormat, OutputOption, fmt, grid, human_time, render, state

app = typer.Typer(
    help="The suppression list: hard bounces, complaints, unsubscribes and manual entries.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
TenantOpt = typer.Option(None, "--tenant", help="The tenant's list (default: the default tenant).", metavar="ID")


@app.command("list")
def suppressions_list(
    ctx: typer.Context,
    tenant: Optional[str] = TenantOpt,
    reason: Optional[str] = typer.Option(
        None, "--reason", help="Only this reason: hard bounce, complaint, unsubscribe or manual.", metavar="REASON"
    ),
    limit: int = typer.Option(100, "--limit", "-n", help="Rows (max 500).", min=1, max=500, metavar="N"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Suppressed addresses, newest first."""
    from connectorctl.delivery.suppressions import list_suppressions

    rows = [s.to_dict() for s in list_suppressions(state(ctx).connector().db, tenant, reason=reason, limit=limit)]

    def table() -> object:
        from rich.markup import escape

        columns = (
            Column("address"),
            Column("reason"),
            Column("vendor", drop=2),
            Column("since (UTC)", drop=3),
            Column("detail", drop=1, wrap=True),
        )
        return grid(
            f"{len(rows)} suppressed",
            columns,
            (
                (
                    escape(r["address"]),
                    r["reason"],
                    r["vendor"] or "-",
                    human_time(r["created_at"]),
                    escape(r["detail"] or ""),
                )
                for r in rows
            ),
        )

    render(fmt(output, as_json), rows, table)


@app.command("add")
def suppressions_add(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="Email address or E.164 phone number."),
    tenant: Optional[str] = TenantOpt,
    note: Optional[str] = typer.Option(None, "--note", help="Why (shown in list and in the refusal).", metavar="TEXT"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Refuse later sends to ADDRESS (reason: manual)."""
    from connectorctl.delivery.suppressions import add, normalize_address

    connector = state(ctx).connector()
    added = add(connector.db, tenant, address, detail=note, now=connector.clock.time())
    result = {"address": normalize_address(address), "tenant_id": tenant, "added": added}
    render(
        fmt(output, as_json), result, lambda: f"{result['address']}: {'suppressed' if added else 'already suppressed'}"
    )


@app.command("rm")
def suppressions_rm(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="Email address or E.164 phone number."),
    tenant: Optional[str] = TenantOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Allow sends to ADDRESS again."""
    from connectorctl.cli.output import fail
    from connectorctl.delivery.suppressions import normalize_address, remove
    from connectorctl.errors import ExitCode

    normalized = normalize_address(address)
    if not remove(state(ctx).connector().db, tenant, normalized):
        raise fail(
            "not_found",
            f"{normalized} is not on the suppression list",
            ExitCode.FAILED,
            "see: connectorctl suppressions list",
        )
    result = {"address": normalized, "tenant_id": tenant, "removed": True}
    render(fmt(output, as_json), result, lambda: f"{normalized}: no longer suppressed")
