"""``connectorctl suppressions list|add|rm``: recipients a tenant's sends are refused for, and why."""

from __future__ import annotations

from typing import Optional

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    YesOption,
    fmt,
    grid,
    human_time,
    render,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="The suppression list: hard bounces, complaints, unsubscribes and manual entries.")
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

    hint = (
        f"nobody is suppressed{' for ' + reason if reason else ''}; bounces, complaints and unsubscribes that "
        "vendors report to `connectorctl serve` land here, or add one: connectorctl suppressions add ADDRESS"
    )
    render(fmt(output, as_json), rows, table, empty=None if rows else hint)


@app.command("add")
def suppressions_add(
    ctx: typer.Context,
    address: str = typer.Argument(..., metavar="ADDRESS", help="Email address or E.164 phone number."),
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
    address: str = typer.Argument(..., metavar="ADDRESS", help="Email address or E.164 phone number."),
    tenant: Optional[str] = TenantOpt,
    yes: bool = YesOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Allow sends to ADDRESS again (asks first; --yes in scripts)."""
    from connectorctl.cli.output import confirm, fail
    from connectorctl.delivery.suppressions import find, normalize_address, remove
    from connectorctl.errors import ExitCode

    db = state(ctx).connector().db
    found = find(db, tenant, address)
    if found is None:
        raise fail(
            "not_found",
            f"{normalize_address(address)} is not on the suppression list",
            ExitCode.FAILED,
            "see: connectorctl suppressions list",
        )
    confirm(f"allow sends to {found.address} again? It was suppressed: {found.describe()}.", yes)
    remove(db, tenant, found.address)
    result = {"address": found.address, "tenant_id": tenant, "removed": True}
    render(fmt(output, as_json), result, lambda: f"{found.address}: no longer suppressed")
