"""``connectorctl metrics``: the reference design's numbers per service, with percentiles and a chart,
plus delivery/bounce/complaint rates from the vendors' delivery reports (``delivery``).

JSON keeps the reference ``GET /api/connector/metrics/{service}`` shape
(``service``, ``period``, ``metrics``) and adds fields, never renames them.
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
    fmt,
    grid,
    human_time,
    one_service,
    render,
    state,
    warn_if_unknown_service,
)

BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest; blank for zero."""
    top = max(values, default=0)
    if top <= 0:
        return " " * len(values)
    return "".join(" " if v <= 0 else BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in values)


def metrics_command(
    ctx: typer.Context,
    service_arg: Optional[str] = typer.Argument(
        None, metavar="SERVICE", help="Vendor slug (same as --service); omit for every service."
    ),
    service_opt: Optional[str] = typer.Option(
        None, "--service", help="Vendor slug; omit for every service.", metavar="SLUG"
    ),
    since: str = typer.Option("7d", "--since", "--from", help="Start: 7d, -30days, 12h or ISO 8601.", metavar="WHEN"),
    until: Optional[str] = typer.Option(
        None, "--until", "--to", help="End: a duration ago or ISO 8601 (default now).", metavar="WHEN"
    ),
    by: Optional[str] = typer.Option(None, "--by", help="Group by service, operation or tenant.", metavar="FIELD"),
    tenant: Optional[str] = typer.Option(None, "--tenant", help="Only this tenant's calls.", metavar="ID"),
    direction: str = typer.Option(
        "outbound",
        "--direction",
        help="outbound (calls to vendors), inbound (webhook deliveries) or all.",
        metavar="WAY",
    ),
    buckets: int = typer.Option(
        24, "--buckets", help="Time slices in the chart and in the JSON series (0 = none).", min=0, max=200, metavar="N"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Success/failure counts, success rate, latency (avg, p50/p95/p99), retries, failure breakdown."""
    from datetime import datetime, timezone

    from connectorctl.delivery.queries import MessageFilter, delivery_rates
    from connectorctl.errors import InvalidInputError
    from connectorctl.store.queries import GROUP_COLUMNS, LogFilter, metrics_by, metrics_for, series
    from connectorctl.times import parse_time, to_iso

    service = one_service(service_arg, service_opt)
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
    hint = None
    if not (data["groups"] if by else data["metrics"]["total_count"]) and not data["delivery"]:
        period = f"{human_time(data['period']['from'])} to {human_time(data['period']['to'])} UTC"
        hint = f"no calls from {period}; widen --since, or make one: {FIRST_SEND}"
    render(out, data, lambda: _view(data), empty=hint)


def _view(data: dict[str, Any]) -> Any:
    from rich.console import Group

    period = data["period"]
    title = f"{data['service'] or 'all services'}: {human_time(period['from'])} .. {human_time(period['to'])} UTC"
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
        parts.append(
            f"[dim]{human_time(points[0]['start'])} -> {human_time(points[-1]['end'])} UTC, {len(points)} slices[/dim]"
        )
    if data.get("delivery"):
        parts.append(_delivery(data["delivery"]))
    return Group(*parts)


def _delivery(rows: list[dict[str, Any]]) -> Any:
    """Delivery, bounce and complaint rates from the vendors' reports, per vendor."""
    columns = (
        Column("vendor"),
        *(Column(name, right=True) for name in ("accepted", "reported", "delivered %", "bounced %", "complained %")),
    )
    return grid(
        "delivery (from vendor reports, % of accepted messages)",
        columns,
        (
            (
                r["vendor"],
                str(r["accepted"]),
                str(r["tracked"]),
                f"{r['delivery_rate']:.2f}",
                f"{r['bounce_rate']:.2f}",
                f"{r['complaint_rate']:.2f}",
            )
            for r in rows
        ),
    )


def _single(title: str, m: dict[str, Any]) -> Any:
    from connectorctl.cli.output import kv_table, styled

    rate = m["success_rate"]
    style = "green" if rate >= 99 else "yellow" if rate >= 90 else "red"
    return kv_table(
        title,
        [
            ("calls", m["total_count"]),
            ("success_count", m["success_count"]),
            ("failure_count", m["failure_count"]),
            ("success_rate", styled(f"[{style}]{rate:.2f} %[/{style}]") if m["total_count"] else "-"),
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


METRIC_COLUMNS = (
    Column("calls", right=True),
    Column("success", drop=6, right=True),
    Column("failure", right=True),
    Column("rate %", right=True),
    Column("avg ms", drop=5, right=True),
    Column("p50", drop=4, right=True),
    Column("p95", right=True),
    Column("p99", drop=3, right=True),
    Column("retries", drop=7, right=True),
    Column("failures by status", drop=2, wrap=True),
    Column("by HTTP class", drop=1, wrap=True),
)


def _grouped(title: str, by: str, groups: list[dict[str, Any]]) -> Any:
    from rich.markup import escape

    rows = []
    for g in groups:
        m = g["metrics"]
        rate = m["success_rate"]
        style = "green" if rate >= 99 else "yellow" if rate >= 90 else "red"
        rows.append(
            (
                escape("-" if g["key"] is None else str(g["key"])),
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
        )
    return grid(title, (Column(by), *METRIC_COLUMNS), rows)


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in counts.items() if v) or "-"
