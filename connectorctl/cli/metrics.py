"""``connectorctl metrics``: the reference design's numbers per service, with percentiles and a chart,
plus delivery/bounce/complaint rates from the vendors' delivery reports (``delivery``).

JSON keeps the reference ``GET /api/connector/metrics/{service}`` shape
(``service``, ``period``, ``metrics``) and adds fields, never renames them.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import JsonOption, OutputFormat, OutputOption, fmt, render, state, warn_if_unknown_service

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest; blank for zero."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(" " if v <= 0 else BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in values)


def metrics_command(
    ctx: typer.Context,
    service: Optional[str] = typer.Argument(None, help="Vendor slug; omit for every service."),
    since: str = typer.Option("7d", "--since", "--from", help="Start: 7d, -30days, 12h or ISO 8601."),
    until: Optional[str] = typer.Option(None, "--until", "--to", help="End: a duration ago or ISO 8601 (default now)."),
    by: Optional[str] = typer.Option(None, "--by", help="Group by service, operation or tenant."),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's calls."),
    direction: str = typer.Option(
        "outbound", "--direction", help="outbound (calls to vendors), inbound (webhook deliveries) or all."
    ),
    buckets: int = typer.Option(
        24, "--buckets", help="Time slices in the chart and in the JSON series (0 = none).", min=0, max=200
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Success/failure counts, success rate, latency (avg, p50/p95/p99), retries, failure breakdown."""
    from datetime import datetime, timezone

    from connectorctl.delivery.queries import MessageFilter, delivery_rates
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.queries import GROUP_COLUMNS, LogFilter, metrics_by, metrics_for, parse_time, series, to_iso

    now = datetime.now(timezone.utc)
    start = parse_time(since, now, name="--since")
    end = parse_time(until, now, name="--until") if until else now
    if end < start:
        raise InvalidInputError("--until is before --since")
    if by is not None and by not in GROUP_COLUMNS:
        raise InvalidInputError(f"cannot group by {by!r} (use one of: {', '.join(GROUP_COLUMNS)})")
    if by is None and service is None:
        by = "service"
    connector = state(ctx).connector()
    warn_if_unknown_service(connector, service)
    db = connector.db
    if direction not in ("outbound", "inbound", "all"):
        raise InvalidInputError(f"--direction must be outbound, inbound or all, not {direction!r}")
    flt = LogFilter(
        service=service, tenant_id=tenant, since=start, until=end, direction=None if direction == "all" else direction
    )
    data: dict[str, Any] = {"service": service, "period": {"from": to_iso(start), "to": to_iso(end)}}
    if tenant:
        data["tenant_id"] = tenant
    if by is None:
        data["metrics"] = metrics_for(db, flt)
    else:
        data["by"] = by
        data["groups"] = metrics_by(db, flt, by)
    if buckets:
        data["series"] = series(db, flt, start, end, buckets)
    data["delivery"] = delivery_rates(db, MessageFilter(vendor=service, tenant_id=tenant, since=start, until=end))
    out = fmt(output, as_json)
    if out is OutputFormat.jsonl:
        rows = (
            [{"key": g["key"], **g["metrics"]} for g in data["groups"]]
            if by
            else [{"service": service, **data["metrics"]}]
        )
        render(out, rows, lambda: None)
        return
    render(out, data, lambda: _view(data))


def _view(data: dict[str, Any]) -> Any:
    from rich.console import Group

    period = data["period"]
    title = f"{data['service'] or 'all services'}: {period['from']} .. {period['to']}"
    groups = data.get("groups")
    if groups is None:
        table: Any = _single(title, data["metrics"])
    else:
        table = _grouped(title, data.get("by") or "service", groups)
    parts: list[Any] = [table]
    points = data.get("series") or []
    if points and any(p["calls"] for p in points):
        parts.append(
            f"volume     {sparkline([p['calls'] for p in points])}  max {max(p['calls'] for p in points)}/slice"
        )
        parts.append(
            f"error rate [red]{sparkline([p['error_rate'] for p in points])}[/red]  max "
            f"{max(p['error_rate'] for p in points):.1f}%"
        )
        parts.append(f"[dim]{points[0]['start']} -> {points[-1]['end']}, {len(points)} slices[/dim]")
    if data.get("delivery"):
        parts.append(_delivery(data["delivery"]))
    return Group(*parts)


def _delivery(rows: list[dict[str, Any]]) -> Any:
    """Delivery, bounce and complaint rates from the vendors' reports, per vendor."""
    from rich.table import Table

    table = Table(title="delivery (from vendor reports, % of accepted messages)")
    for name in ("vendor", "accepted", "reported", "delivered %", "bounced %", "complained %"):
        table.add_column(name, justify="left" if name == "vendor" else "right")
    for r in rows:
        table.add_row(
            r["vendor"],
            str(r["accepted"]),
            str(r["tracked"]),
            f"{r['delivery_rate']:.2f}",
            f"{r['bounce_rate']:.2f}",
            f"{r['complaint_rate']:.2f}",
        )
    return table


def _single(title: str, m: dict[str, Any]) -> Any:
    from connectorctl.cli.output import kv_table

    rate = m["success_rate"]
    style = "green" if rate >= 99 else "yellow" if rate >= 90 else "red"
    return kv_table(
        title,
        [
            ("calls", m["total_count"]),
            ("success_count", m["success_count"]),
            ("failure_count", m["failure_count"]),
            ("success_rate", f"[{style}]{rate:.2f} %[/{style}]" if m["total_count"] else "-"),
            ("avg_duration_ms", f"{m['avg_duration_ms']:.1f}"),
            (
                "p50 / p95 / p99 ms",
                " / ".join("-" if m[p] is None else str(m[p]) for p in ("p50_ms", "p95_ms", "p99_ms")),
            ),
            ("retry_count", m["retry_count"]),
            ("failures by status", _counts(m["failures_by_status"])),
            ("failures by HTTP class", _counts(m["failures_by_http_class"])),
        ],
    )


def _grouped(title: str, by: str, groups: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(by)
    for name in (
        "calls",
        "success",
        "failure",
        "rate %",
        "avg ms",
        "p50",
        "p95",
        "p99",
        "retries",
        "failures by status",
        "by HTTP class",
    ):
        table.add_column(name, justify="left" if name.startswith(("failures", "by")) else "right")
    for g in groups:
        m = g["metrics"]
        rate = m["success_rate"]
        style = "green" if rate >= 99 else "yellow" if rate >= 90 else "red"
        table.add_row(
            "-" if g["key"] is None else str(g["key"]),
            str(m["total_count"]),
            str(m["success_count"]),
            str(m["failure_count"]),
            f"[{style}]{rate:.2f}[/{style}]" if m["total_count"] else "-",
            f"{m['avg_duration_ms']:.1f}",
            *(str(m[p]) if m[p] is not None else "-" for p in ("p50_ms", "p95_ms", "p99_ms")),
            str(m["retry_count"]),
            _counts(m["failures_by_status"]),
            _counts(m["failures_by_http_class"]),
        )
    return table


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items() if v) or "-"
