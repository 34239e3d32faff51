"""The heavier half of ``connectorctl send``: dry-run reports and bulk runs with progress.

Imported only inside the send commands, so ``--help`` never pays for it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import typer

from connectorctl.cli.output import OutputFormat, render, stderr


def dry_run_report(connector: Any, gateway: Any, message: Any) -> dict[str, Any]:
    """The resolved chain, each vendor's circuit state and the redacted request it would get."""
    from connectorctl.gateway import validated_email

    if gateway.channel == "email":
        message = validated_email(message).filled()
    hops = []
    for slug in gateway.chain:
        adapter = connector.adapter(slug, gateway.channel)
        missing = sorted(adapter.unsupported(message))
        hop: dict[str, Any] = {"vendor": slug, "circuit": connector.pipeline.breaker.state(slug).state.value}
        if missing:
            hop["skipped"] = f"lacks {', '.join(missing)}"
        else:
            try:
                hop["request"] = adapter.preview(message, tenant_id=gateway.tenant_id)
            except Exception as exc:  # noqa: BLE001 - a preview must never send, nor crash the report
                hop["request"] = {
                    "error": f"{getattr(exc, 'code', type(exc).__name__)}: {getattr(exc, 'message', exc)}"
                }
        hops.append(hop)
    return {"dry_run": True, "channel": gateway.channel, "chain": hops}


def render_dry_run(report: dict[str, Any], output: OutputFormat) -> None:
    def table() -> Any:
        from rich.markup import escape

        from connectorctl.cli.output import Column, grid

        rows = []
        for n, hop in enumerate(report["chain"], start=1):
            request = hop.get("request") or {}
            if "skipped" in hop:
                shown = f"skipped: {hop['skipped']}"
            elif request.get("kind") == "local" or "action" in request:
                shown = request.get("action", "")
            else:
                shown = json.dumps(
                    {k: v for k, v in request.items() if k not in ("vendor", "kind")},
                    indent=2,
                    ensure_ascii=False,
                    default=str,
                )
            rows.append((str(n), hop["vendor"], hop["circuit"], escape(shown)))
        extra = {k: v for k, v in report.items() if k not in ("chain", "dry_run", "channel")}
        columns = (Column("#"), Column("vendor"), Column("circuit"), Column("would send", wrap=True))
        return grid(
            f"dry run: {report['channel']} chain (nothing sent)",
            columns,
            rows,
            caption=", ".join(f"{k}: {v}" for k, v in extra.items()) or None,
        )

    render(output, report, table)


def run_bulk(
    ctx: typer.Context,
    connector: Any,
    gateway: Any,
    channel: str,
    path: Path,
    normalize: Callable[[str], str],
    build: Callable[[Any, str], Any],
    *,
    template: Sequence[str],
    filled: Sequence[str | None],
    batch_id: str | None,
    concurrency: int,
    resend_uncertain: bool,
    dry_run: bool,
    output: OutputFormat,
) -> None:
    from connectorctl.bulk.journal import BatchJournal, batch_id_for
    from connectorctl.bulk.recipients import check_placeholders, parse_rows, read_file
    from connectorctl.bulk.runner import BulkReport, BulkRunner
    from connectorctl.errors import ExitCode

    content = read_file(path)
    rows = parse_rows(content, channel, str(path))
    check_placeholders(filled, rows, str(path))
    batch = batch_id or batch_id_for(channel, content, template)
    journal = BatchJournal(connector.db, batch, connector.clock.time)
    runner = BulkRunner(gateway, journal, concurrency=concurrency, resend_uncertain=resend_uncertain)
    if not dry_run:
        runner.ask = lambda row, key, cid: ask_vendor(gateway, journal, build(row, key), cid)
    if dry_run:
        todo, decided = runner.plan(rows, normalize)
        sample = todo[0] if todo else _first_valid(rows, normalize)
        report = (
            dry_run_report(connector, gateway, build(*sample))
            if sample
            else {"dry_run": True, "channel": channel, "chain": []}
        )
        report.update(
            {
                "batch_id": batch,
                "recipients": len(rows),
                "would_send": len(todo),
                "not_sent": {
                    s: sum(1 for d in decided if d["status"] == s)
                    for s in ("skipped", "uncertain", "duplicate", "failed")
                },
            }
        )
        return render_dry_run(report, output)
    journal.open(channel, str(path), len(rows))
    result = BulkReport(batch, channel)
    progress = _Progress(len(rows))
    runner.progress = progress.advance
    try:
        with progress:
            runner.run(rows, normalize, build, result)
    finally:
        connector.close()
    render(output, result.to_dict(), lambda: _summary_table(result))
    if result.interrupted:
        raise typer.Exit(130)
    if not result.ok:  # an uncertain row outweighs failed ones: it must be checked before anything is sent again
        raise typer.Exit(ExitCode.UNCERTAIN if result.counts["uncertain"] else ExitCode.FAILED)


def ask_vendor(gateway: Any, journal: Any, message: Any, correlation_id: str) -> Any:
    """Settle a row a killed run left uncertain: the vendor is asked by the row's key (its correlation id)."""
    from connectorctl.errors import ConnectorctlError
    from connectorctl.outbox.resolve import Resolution, resolve

    try:
        return resolve(gateway, message, key=correlation_id, since=journal.started_at())
    except ConnectorctlError as exc:  # the vendor's search is down too: the row stays uncertain
        return Resolution(
            None, getattr(exc, "service", None), None, f"could not ask the vendor ({exc.code}: {exc.message})"
        )


def _first_valid(rows: Sequence[Any], normalize: Callable[[str], str]) -> tuple[Any, str] | None:
    from connectorctl.errors import ConnectorctlError

    for row in rows:
        try:
            return row, normalize(row.address)
        except ConnectorctlError:
            continue
    return None


class _Progress:
    """A rich progress bar on stderr (data stays on stdout)."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=stderr(),
            transient=False,
        )
        self.task = self.bar.add_task("send", total=total, failed=0)
        self.failed = 0

    def advance(self, result: dict[str, Any]) -> None:
        if result["status"] in ("failed", "uncertain"):
            self.failed += 1
        self.bar.update(self.task, advance=1, failed=self.failed)

    def __enter__(self) -> "_Progress":
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


def _summary_table(report: Any) -> Any:
    from rich.console import Group
    from rich.markup import escape

    from connectorctl.cli.output import Column, grid

    summary = grid(
        "bulk send" + (" (interrupted)" if report.interrupted else ""),
        (Column("status"), Column("count", right=True)),
        ((status, str(count)) for status, count in report.counts.items() if count),
        caption=f"batch {report.batch_id}, {report.elapsed_seconds:.2f} s",
    )
    problems = [r for r in report.results if r["status"] in ("failed", "uncertain")]
    if not problems:
        return summary
    columns = (Column("row", right=True), Column("recipient"), Column("status"), Column("error", wrap=True))
    detail = grid(
        "not sent",
        columns,
        (
            (escape(str(r["row"])), escape(r["recipient"]), r["status"], escape(f"[{r['error_code']}] {r['error']}"))
            for r in sorted(problems, key=lambda r: r["row"])[:50]
        ),
        caption=f"... and {len(problems) - 50} more (use --json)" if len(problems) > 50 else None,
    )
    return Group(summary, detail)
