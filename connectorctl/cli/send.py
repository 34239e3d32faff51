"""``connectorctl send email|sms``: parse, call the gateway, render the SendResult."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import typer

from connectorctl.cli.output import JsonOption, OutputFormat, OutputOption, fmt, parse_header_options, render, state
from connectorctl.cli.plain import CommandGroup
from connectorctl.validation import MIB, read_limited

if TYPE_CHECKING:
    from datetime import datetime

MAX_BODY_BYTES = 10 * MIB  # more than any vendor accepts in one message
MAX_ATTACHMENT_BYTES = 25 * MIB

app = CommandGroup(help="Send an email or an SMS through the configured vendor chain.")


def _result_table(result: dict) -> object:
    from rich.markup import escape

    from connectorctl.cli.output import Column, grid

    def status(value: str) -> str:
        style = "green" if value in ("accepted", "queued", "scheduled") else "red"
        return f"[{style}]{value}[/{style}]"

    columns = (Column("recipient"), Column("status"), Column("message_id"), Column("reason", drop=1, wrap=True))
    return grid(
        f"sent via {result['vendor']}" if result["ok"] else f"NOT fully accepted by {result['vendor']}",
        columns,
        (
            (escape(r["recipient"]), status(r["status"]), escape(r["message_id"] or "-"), escape(r["reason"] or ""))
            for r in result["recipients"]
        ),
        caption=f"correlation id {result['correlation_id']}",
    )


def _finish(result_dict: dict, output: OutputFormat) -> None:
    """Exit 1 when a recipient was refused; 9 (as for payments) when the vendor may have taken the message:
    check its log before sending again."""
    from connectorctl.errors import ExitCode

    render(output, result_dict, lambda: _result_table(result_dict))
    if any(r["status"] == "uncertain" for r in result_dict["recipients"]):
        raise typer.Exit(ExitCode.UNCERTAIN)
    if not result_dict["ok"]:
        raise typer.Exit(ExitCode.FAILED)


_ToFile = typer.Option(
    None,
    "--to-file",
    help="CSV of recipients for a bulk send (see docs/failover-and-bulk.md).",
    dir_okay=False,
    metavar="CSV",
)
_BatchId = typer.Option(
    None, "--batch-id", help="Name the batch (default: derived from the file and the message).", metavar="ID"
)
_Concurrency = typer.Option(8, "--concurrency", min=1, max=64, help="Bulk: messages in flight at once.", metavar="N")
_ResendUncertain = typer.Option(
    False,
    "--resend-uncertain",
    help="Bulk: also re-send rows an interrupted run may have sent to a vendor that cannot be asked.",
)
_DryRun = typer.Option(
    False, "--dry-run", help="Show the vendor chain, circuit states and redacted requests; send nothing."
)
_Vendor = typer.Option(None, "--vendor", help="Use this vendor instead of the configured chain.", metavar="SLUG")
_Tenant = typer.Option(None, "--tenant", help="Tenant whose credentials and logs to use.", metavar="ID")
_Force = typer.Option(False, "--force", help="Send even to a recipient on the suppression list (not with --to-file).")
_Queue = typer.Option(False, "--queue", help="Store it in the outbox and return at once; `outbox work` delivers it.")
_Key = typer.Option(
    None,
    "--key",
    help="With --queue: your key for the message (the same key queued twice is one message).",
    metavar="KEY",
)


def _enqueue(gateway: object, message: object, key: Optional[str], output: OutputFormat) -> None:
    queued = gateway.enqueue(message, key=key).to_dict()  # type: ignore[attr-defined]
    render(
        output,
        queued,
        lambda: f"{queued['id']}: {'queued' if queued['new'] else 'already queued'} (key {queued['key']})",
    )


@app.command("email")
def send_email(
    ctx: typer.Context,
    to: List[str] = typer.Option([], "--to", help="Recipient address (repeat for several).", metavar="ADDRESS"),
    subject: Optional[str] = typer.Option(
        None, "--subject", "-s", help="Subject line ({{name}} placeholders from --data or the CSV).", metavar="TEXT"
    ),
    body: Optional[str] = typer.Option(
        None, "--body", help="Message body ({{column}} placeholders in bulk).", metavar="TEXT"
    ),
    body_file: Optional[Path] = typer.Option(
        None, "--body-file", help="Read the body from a file ('-' for stdin).", allow_dash=True, metavar="FILE"
    ),
    html: bool = typer.Option(False, "--html", help="The body is HTML (a plain-text part is derived)."),
    cc: List[str] = typer.Option([], "--cc", help="Cc address (repeatable).", metavar="ADDRESS"),
    bcc: List[str] = typer.Option([], "--bcc", help="Bcc address (repeatable).", metavar="ADDRESS"),
    reply_to: Optional[str] = typer.Option(None, "--reply-to", help="Reply-To address.", metavar="ADDRESS"),
    from_email: Optional[str] = typer.Option(
        None, "--from", help="Override the configured sender address.", metavar="ADDRESS"
    ),
    header: List[str] = typer.Option(
        [], "--header", help="Custom header 'Name: value' (repeatable).", metavar="'NAME: VALUE'"
    ),
    tag: List[str] = typer.Option([], "--tag", help="Tag for the vendor's analytics (repeatable).", metavar="TAG"),
    attach: List[Path] = typer.Option(
        [], "--attach", help="Attach a file (repeatable).", exists=True, dir_okay=False, metavar="FILE"
    ),
    template: Optional[str] = typer.Option(
        None,
        "--template",
        help="Send the vendor's stored template (id, alias or name) instead of a body.",
        metavar="ID",
    ),
    data: Optional[Path] = typer.Option(
        None,
        "--data",
        help="JSON object of merge data: the template's data, or {{name}} values ('-' for stdin).",
        allow_dash=True,
        metavar="FILE",
    ),
    at: Optional[str] = typer.Option(
        None, "--at", help="Have the vendor deliver at this time (ISO 8601, e.g. 2026-12-24T09:00Z).", metavar="TIME"
    ),
    after: Optional[str] = typer.Option(
        None, "--in", help="Have the vendor deliver after this long (e.g. 2h, 30m).", metavar="DURATION"
    ),
    to_file: Optional[Path] = _ToFile,
    batch_id: Optional[str] = _BatchId,
    concurrency: int = _Concurrency,
    resend_uncertain: bool = _ResendUncertain,
    dry_run: bool = _DryRun,
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    force: bool = _Force,
    queue: bool = _Queue,
    key: Optional[str] = _Key,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Send one transactional email, or one per row of --to-file."""
    from dataclasses import replace

    from connectorctl.domain.messages import Attachment, EmailMessage
    from connectorctl.errors import InvalidInputError

    _check_targets(to, to_file, force, queue, key, dry_run)
    if not template and subject is None:
        raise InvalidInputError("give --subject (or --template for a template stored at the vendor)")
    text = _read_body(body, body_file, optional=bool(template))
    headers = dict(parse_header_options(header))
    attachments = tuple(
        Attachment(p.name, read_limited(p, f"attachment {p}", MAX_ATTACHMENT_BYTES), _guess_type(p)) for p in attach
    )
    merge_data = _read_data(data)
    connector = state(ctx).connector()
    message = EmailMessage(
        to=tuple(to) or ("bulk@placeholder.invalid",),
        subject=subject or "",
        text=_strip_html(text) if html and text else text,
        html=text if html else None,
        from_email=from_email,
        cc=tuple(cc),
        bcc=tuple(bcc),
        reply_to=reply_to,
        headers=headers,
        tags=tuple(tag),
        attachments=attachments,
        template_id=template,
        merge_data=merge_data,
        send_at=_send_at(at, after, connector.clock.time()),
    )
    gateway = connector.email(vendor, tenant_id=tenant)
    out = fmt(output, as_json)
    if to_file is None:
        if dry_run:
            from connectorctl.cli.send_view import dry_run_report, render_dry_run

            return render_dry_run(dry_run_report(connector, gateway, message), out)
        if queue:
            return _enqueue(gateway, message, key, out)
        return _finish(gateway.send(message, force=force).to_dict(), out)

    from connectorctl.bulk.recipients import Row
    from connectorctl.cli.send_view import run_bulk
    from connectorctl.validation import normalize_email

    def build(row: Row, key: str) -> EmailMessage:
        """Each row's columns are its merge data: the template's data, or its {{column}} values (a batch lets the
        vendor fill them)."""
        return replace(message, to=(key,), merge_data={**merge_data, **row.fields})

    run_bulk(
        ctx,
        connector,
        gateway,
        "email",
        to_file,
        normalize_email,
        build,
        template=(
            subject or "",
            text or "",
            str(html),
            from_email or "",
            ",".join(cc),
            ",".join(bcc),
            template or "",
            json.dumps(merge_data, sort_keys=True),
        ),  # not the delivery time: a re-run with another --in resumes the same batch instead of sending it again
        filled=() if template else (subject, text),
        batch_id=batch_id,
        concurrency=concurrency,
        resend_uncertain=resend_uncertain,
        dry_run=dry_run,
        output=out,
    )


@app.command("sms")
def send_sms(
    ctx: typer.Context,
    to: Optional[str] = typer.Option(
        None, "--to", help="Recipient number in E.164 form, e.g. +14155550123.", metavar="NUMBER"
    ),
    message: str = typer.Option(
        ..., "--message", "-m", help="Text of the SMS ({{column}} placeholders in bulk).", metavar="TEXT"
    ),
    from_number: Optional[str] = typer.Option(
        None, "--from", help="Override the configured sender number.", metavar="NUMBER"
    ),
    idempotency_key: Optional[str] = typer.Option(
        None,
        "--idempotency-key",
        metavar="KEY",
        help="Accepted for scripts but it cannot make a retry safe: Twilio and Vonage never receive a key and cannot "
        "deduplicate an SMS. After a timeout or 5xx the SMS is not retried and is reported 'uncertain'.",
    ),
    status_callback: Optional[str] = typer.Option(
        None,
        "--status-callback",
        help="URL the vendor reports delivery to (twilio, vonage); else vendors.<v>.status_callback.",
        metavar="URL",
    ),
    to_file: Optional[Path] = _ToFile,
    batch_id: Optional[str] = _BatchId,
    concurrency: int = _Concurrency,
    resend_uncertain: bool = _ResendUncertain,
    dry_run: bool = _DryRun,
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    force: bool = _Force,
    queue: bool = _Queue,
    key: Optional[str] = _Key,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Send one SMS, or one per row of --to-file."""
    from dataclasses import replace

    from connectorctl.domain.messages import SmsMessage
    from connectorctl.errors import InvalidInputError

    if not message.strip():
        raise InvalidInputError("--message is empty")
    _check_targets(to, to_file, force, queue, key, dry_run)
    connector = state(ctx).connector()
    gateway = connector.sms(vendor, tenant_id=tenant)
    out = fmt(output, as_json)
    sms = SmsMessage(
        to=to or "",
        body=message,
        from_number=from_number,
        idempotency_key=idempotency_key,
        status_callback=status_callback,
    )
    if to_file is None:
        if dry_run:
            from connectorctl.cli.send_view import dry_run_report, render_dry_run
            from connectorctl.validation import normalize_phone

            return render_dry_run(dry_run_report(connector, gateway, replace(sms, to=normalize_phone(sms.to))), out)
        if queue:
            return _enqueue(gateway, sms, key, out)
        return _finish(gateway.send(sms, force=force).to_dict(), out)

    from connectorctl.bulk.recipients import Row
    from connectorctl.bulk.recipients import render as fill
    from connectorctl.cli.send_view import run_bulk
    from connectorctl.validation import normalize_phone

    def build(row: Row, key: str) -> SmsMessage:
        return replace(sms, to=key, body=fill(message, row.fields) or "", idempotency_key=None)

    run_bulk(
        ctx,
        connector,
        gateway,
        "sms",
        to_file,
        normalize_phone,
        build,
        template=(message, from_number or ""),
        filled=(message,),
        batch_id=batch_id,
        concurrency=concurrency,
        resend_uncertain=resend_uncertain,
        dry_run=dry_run,
        output=out,
    )


def _check_targets(
    to: object, to_file: Optional[Path], force: bool, queue: bool, key: Optional[str], dry_run: bool
) -> None:
    from connectorctl.errors import InvalidInputError

    if bool(to) == bool(to_file):
        raise InvalidInputError("give --to or --to-file (not both)")
    if force and to_file:
        raise InvalidInputError("--force overrides the suppression list for one send only, not with --to-file")
    if queue and (to_file or force or dry_run):
        raise InvalidInputError("--queue stores one message for the outbox: not with --to-file, --force or --dry-run")
    if key is not None and not queue:
        raise InvalidInputError("--key names a queued message: use it with --queue")


def _read_body(body: Optional[str], body_file: Optional[Path], *, optional: bool = False) -> Optional[str]:
    from connectorctl.errors import InvalidInputError

    if body is not None and body_file is not None:
        raise InvalidInputError("give only one of --body or --body-file")
    if body is None and body_file is None:
        if optional:
            return None
        raise InvalidInputError("give exactly one of --body or --body-file (or --template)")
    if body is not None:
        return body
    assert body_file is not None
    if str(body_file) == "-":
        from connectorctl.cli.output import read_stdin_text

        return read_stdin_text("--body-file -")
    try:
        return read_limited(body_file, f"--body-file {body_file}", MAX_BODY_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"cannot read --body-file {body_file}: not UTF-8 text (byte {exc.start})") from None


def _read_data(path: Optional[Path]) -> dict:
    """``--data``: one JSON object (the template's data, or the values of ``{{name}}`` placeholders)."""
    from connectorctl.errors import InvalidInputError

    if path is None:
        return {}
    if str(path) == "-":
        from connectorctl.cli.output import read_stdin_text

        raw = read_stdin_text("--data -")
    else:
        try:
            raw = read_limited(path, f"--data {path}", MAX_BODY_BYTES).decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(f"cannot read --data {path}: not UTF-8 text") from None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--data {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"--data {path}: must be a JSON object of names and values")
    return value


def _send_at(at: Optional[str], after: Optional[str], now: float) -> Optional["datetime"]:
    """``--at`` (an ISO 8601 time, naive = UTC) or ``--in`` (a duration from now); it must lie ahead."""
    from datetime import datetime, timedelta, timezone

    from connectorctl.errors import InvalidInputError
    from connectorctl.times import parse_duration

    if at is not None and after is not None:
        raise InvalidInputError("give --at or --in, not both")
    current = datetime.fromtimestamp(now, timezone.utc)
    if after is not None:
        return current + timedelta(seconds=parse_duration(after, name="--in"))
    if at is None:
        return None
    try:
        value = datetime.fromisoformat(at.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInputError(f"invalid --at {at!r}: use an ISO 8601 time such as 2026-12-24T09:00Z") from None
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if value <= current:
        raise InvalidInputError(f"--at {at} is not in the future (now {current:%Y-%m-%dT%H:%M}Z)")
    return value


def _strip_html(html: str) -> str:
    import html as html_lib
    import re

    text = re.sub(r"(?is)<(script|style).*?</\1>", "", html)
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</h\d>|</li>", "\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    return html_lib.unescape(re.sub(r"\n{3,}", "\n\n", text)).strip()


def _guess_type(path: Path) -> str:
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
