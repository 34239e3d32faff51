"""``connectorctl circuit list|show|trip|reset|disable|enable``: operate the shared breakers.

The state lives in the SQLite file, so a trip here is obeyed by every running
process on its next call.  Each action is recorded with who, when and why.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    ServiceArgument,
    ServiceOption,
    YesOption,
    fmt,
    grid,
    human_time,
    render,
    required_service,
    show,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Inspect and operate the per-service circuit breakers.")
ReasonOpt = typer.Option(None, "--reason", help="Why: recorded in the audit trail.", metavar="TEXT")
STATE_STYLE = {"closed": "green", "half_open": "yellow", "open": "red", "forced_open": "bold red", "disabled": "dim"}


def _breaker(ctx: typer.Context) -> Any:
    from connectorctl.resilience.circuit import CircuitBreaker

    connector = state(ctx).connector()
    return CircuitBreaker(connector.db, connector.settings.circuit_breaker, connector.clock)


def _check_service(ctx: typer.Context, service: str) -> str:
    from connectorctl.adapters.catalog import VENDORS
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.health import is_known_service

    slug = service.strip()
    connector = state(ctx).connector()
    if is_known_service(connector.db, connector.settings, slug):
        return slug
    raise InvalidInputError(f"unknown service {service!r} (known: {', '.join(sorted(VENDORS))})")


def _iso(epoch: float | None) -> str | None:
    from connectorctl.store.logs import iso_utc

    return None if epoch is None else iso_utc(epoch)


def state_dict(s: Any) -> dict[str, Any]:
    return {
        "service_name": s.service_name,
        "state": s.state.value,
        "consecutive_failures": s.consecutive_failures,
        "opened_at": _iso(s.opened_at),
        "open_until": _iso(s.open_until),
        "probe_lease_until": _iso(s.probe_lease_until),
        "reason": s.reason,
        "updated_by": s.updated_by,
        "updated_at": _iso(s.updated_at),
    }


def _styled(value: str) -> str:
    style = STATE_STYLE.get(value, "white")
    return f"[{style}]{value}[/{style}]"


@app.command("list")
def circuit_list(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Every known breaker: configured services (closed unless recorded otherwise) and recorded ones."""
    from rich.markup import escape

    breaker = _breaker(ctx)
    settings = state(ctx).settings()
    stored = {s.service_name: s for s in breaker.all_states()}
    names = sorted({*settings.email_vendor, *settings.sms_vendor, *settings.vendors, *stored})
    rows = [state_dict(stored[n] if n in stored else breaker.state(n)) for n in names]

    columns = (
        Column("service"),
        Column("state"),
        Column("failures", drop=2, right=True),
        Column("open until (UTC)"),
        Column("reason", drop=1, wrap=True),
        Column("by", drop=4),
        Column("updated (UTC)", drop=3),
    )
    render(
        fmt(output, as_json),
        rows,
        lambda: grid(
            "circuit breakers",
            columns,
            (
                (
                    escape(r["service_name"]),
                    _styled(r["state"]),
                    show(r["consecutive_failures"]),
                    human_time(r["open_until"]),
                    escape(r["reason"] or ""),
                    escape(r["updated_by"] or ""),
                    human_time(r["updated_at"]),
                )
                for r in rows
            ),
        ),
    )


@app.command("show")
def circuit_show(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    limit: int = typer.Option(20, "--limit", help="How many recent events to show.", min=1, max=500, metavar="N"),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """One breaker's state and its recent transitions and operator actions (who, when, why)."""
    from rich.console import Group
    from rich.markup import escape

    slug = _check_service(ctx, required_service(service, service_opt))
    breaker = _breaker(ctx)
    data = state_dict(breaker.state(slug))
    data["events"] = [{**e, "created_at": _iso(e["created_at"])} for e in breaker.events(slug, limit)]
    out = fmt(output, as_json)
    if out is OutputFormat.jsonl:
        render(out, data["events"], lambda: None)
        return

    def view() -> Any:
        columns = (
            Column("when (UTC)"),
            Column("action"),
            Column("from", drop=2),
            Column("to"),
            Column("actor", drop=3),
            Column("reason", drop=1, wrap=True),
        )
        events = grid(
            "events (newest first)",
            columns,
            (
                (
                    human_time(e["created_at"]),
                    e["action"],
                    e["previous_state"],
                    _styled(e["new_state"]),
                    escape(e["actor"] or ""),
                    escape(e["reason"] or ""),
                )
                for e in data["events"]
            ),
        )
        return Group(_state_view(slug, data), events)

    render(out, data, view)


def _state_view(slug: str, data: dict[str, Any]) -> Any:
    from connectorctl.cli.output import kv_table, styled

    pairs = []
    for key, value in data.items():
        if key == "state":
            value = styled(_styled(value))
        elif key in ("opened_at", "open_until", "probe_lease_until", "updated_at") and value:
            value = human_time(value) + " UTC"
        if key != "events":
            pairs.append((key, value))
    return kv_table(f"circuit {slug}", pairs)


def _act(ctx: typer.Context, action: str, service: str, output: OutputFormat, as_json: bool, **kwargs: Any) -> None:
    from connectorctl.cli.output import stderr

    slug = _check_service(ctx, service)
    new_state = getattr(_breaker(ctx), action)(slug, **kwargs)
    data = state_dict(new_state)
    stderr().print(f"circuit {slug}: {action} recorded -> {data['state']}", highlight=False)
    render(fmt(output, as_json), data, lambda: _state_view(slug, data))


@app.command("trip")
def circuit_trip(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    reason: Optional[str] = ReasonOpt,
    for_: Optional[str] = typer.Option(
        None, "--for", help="Close again automatically after this long (30s, 10m, 2h).", metavar="DURATION"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Force the circuit open: every process fails calls to SERVICE fast until reset (or --for ends)."""
    from connectorctl.times import parse_duration

    seconds = parse_duration(for_, name="--for") if for_ is not None else None
    _act(ctx, "trip", required_service(service, service_opt), output, as_json, reason=reason, for_seconds=seconds)


@app.command("reset")
def circuit_reset(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    reason: Optional[str] = ReasonOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Close the circuit now and forget counted failures."""
    _act(ctx, "reset", required_service(service, service_opt), output, as_json, reason=reason)


@app.command("disable")
def circuit_disable(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    reason: Optional[str] = ReasonOpt,
    yes: bool = YesOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Turn the breaker off for SERVICE: every call goes through, none is counted (asks first; --yes in scripts)."""
    from connectorctl.cli.output import confirm

    slug = _check_service(ctx, required_service(service, service_opt))
    confirm(f"turn off the circuit breaker for {slug}? Every process will keep calling it, however it fails.", yes)
    _act(ctx, "disable", slug, output, as_json, reason=reason)


@app.command("enable")
def circuit_enable(
    ctx: typer.Context,
    service: Optional[str] = ServiceArgument,
    service_opt: Optional[str] = ServiceOption,
    reason: Optional[str] = ReasonOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Turn a disabled breaker back on (closed)."""
    _act(ctx, "enable", required_service(service, service_opt), output, as_json, reason=reason)
