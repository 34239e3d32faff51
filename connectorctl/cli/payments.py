"""``connectorctl payments charge|capture|cancel|refund|show|list|reconcile``.

A thin shell over :class:`~connectorctl.payments.service.PaymentService`: each
command parses, calls the service and renders one result as a table or JSON.
Exit codes: 0 ok, 8 declined, 9 outcome uncertain (run ``reconcile``), 1 vendor
failure, 2 bad input (nothing was sent); see the README for the rest.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from connectorctl.cli.output import (
    JsonOption,
    OutputFormat,
    OutputOption,
    YesOption,
    confirm,
    fmt,
    kv_table,
    render,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Charge, capture, refund and reconcile payments (Stripe, PayPal).")
VendorOpt = typer.Option(
    None, "--vendor", help="Vendor slug (default: payment_vendor from the config).", metavar="SLUG"
)
SinceOpt = typer.Option(
    None, "--since", help="Only records created since: a duration ago (1h, 2d) or ISO 8601.", metavar="WHEN"
)
PaymentIdArg = typer.Argument(
    ..., metavar="ID", help="The vendor's payment id (pi_... for Stripe, the order id for PayPal)."
)
AmountOpt = typer.Option(
    None,
    "--amount",
    help="Part of the payment only, e.g. '5.00 EUR' or '5.00' in the payment's currency.",
    metavar="AMOUNT",
)
ReferenceOpt = typer.Option(
    None, "--reference", help="Your business key for this operation (default: derived from ID).", metavar="KEY"
)


def _service(ctx: typer.Context, vendor: Optional[str] = None) -> Any:
    return state(ctx).connector().payments(vendor)


def _payment_view(title: str, data: dict[str, Any]) -> Any:
    return kv_table(title, [(k, v) for k, v in data.items() if v not in (None, False) or k == "status"])


def _amount(service: Any, payment_id: str, text: Optional[str]) -> Any:
    if text is None:
        return None
    from connectorctl.domain.money import Money

    known = service.records.get(payment_id)
    return Money.parse(text, default_currency=known.amount.currency if known else None)


def _since(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    from connectorctl.store.queries import parse_time, to_iso

    return to_iso(parse_time(text, name="--since"))


@app.command("charge")
def payments_charge(
    ctx: typer.Context,
    amount: str = typer.Argument(..., metavar="AMOUNT", help="Amount and currency, e.g. '19.99 EUR' or '1000 JPY'."),
    reference: str = typer.Option(
        ...,
        "--reference",
        "-r",
        help="Your business key, e.g. order:123:charge: the same key never charges twice.",
        metavar="KEY",
    ),
    authorize_only: bool = typer.Option(
        False, "--authorize-only", help="Hold the funds; capture later with `payments capture`."
    ),
    payment_method: Optional[str] = typer.Option(
        None, "--payment-method", help="A vendor token (pm_... or a PayPal vault id); never card data.", metavar="TOKEN"
    ),
    description: Optional[str] = typer.Option(
        None, "--description", help="Shown to the payer where the vendor supports it.", metavar="TEXT"
    ),
    metadata: list[str] = typer.Option(
        [], "--metadata", help="key=value, repeatable (Stripe only).", metavar="KEY=VALUE"
    ),
    vendor: Optional[str] = VendorOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Charge AMOUNT (or only authorize it) under your reference."""
    from connectorctl.domain.money import Money
    from connectorctl.errors import InvalidInputError

    pairs = {}
    for item in metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError("--metadata must look like key=value")
        pairs[key] = value
    money = Money.parse(amount)
    payment = _service(ctx, vendor).charge(
        money,
        reference=reference,
        capture=not authorize_only,
        payment_method=payment_method,
        description=description,
        metadata=pairs,
    )
    data = payment.to_dict()
    render(fmt(output, as_json), data, lambda: _payment_view(f"payment {payment.payment_id}", data))


@app.command("capture")
def payments_capture(
    ctx: typer.Context,
    payment_id: str = PaymentIdArg,
    amount: Optional[str] = AmountOpt,
    reference: Optional[str] = ReferenceOpt,
    vendor: Optional[str] = VendorOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Capture an authorized payment, in full or in part."""
    service = _service(ctx, vendor)
    payment = service.capture(payment_id, _amount(service, payment_id, amount), reference=reference)
    data = payment.to_dict()
    render(fmt(output, as_json), data, lambda: _payment_view(f"payment {payment.payment_id}", data))


@app.command("cancel")
def payments_cancel(
    ctx: typer.Context,
    payment_id: str = PaymentIdArg,
    reference: Optional[str] = ReferenceOpt,
    yes: bool = YesOption,
    vendor: Optional[str] = VendorOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Cancel (void) a payment that was authorized but not captured (asks first; --yes in scripts)."""
    service = _service(ctx, vendor)
    confirm(f"cancel payment {payment_id}? A voided authorization cannot be captured any more.", yes)
    payment = service.cancel(payment_id, reference=reference)
    data = payment.to_dict()
    render(fmt(output, as_json), data, lambda: _payment_view(f"payment {payment.payment_id}", data))


@app.command("refund")
def payments_refund(
    ctx: typer.Context,
    payment_id: str = PaymentIdArg,
    amount: Optional[str] = AmountOpt,
    reason: Optional[str] = typer.Option(
        None, "--reason", help="duplicate, fraudulent or requested_by_customer.", metavar="REASON"
    ),
    reference: Optional[str] = typer.Option(
        None, "--reference", help="Your key for this refund (default: ID:refund:N, numbered).", metavar="KEY"
    ),
    yes: bool = YesOption,
    vendor: Optional[str] = VendorOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Refund a captured payment in full or in part, several times if need be (asks first; --yes in scripts)."""
    service = _service(ctx, vendor)
    money = _amount(service, payment_id, amount)
    what = "everything not yet refunded" if money is None else money
    confirm(f"refund {what} of payment {payment_id}? This cannot be undone.", yes)
    payment = service.refund(payment_id, money, reason=reason, reference=reference)
    data = payment.to_dict()
    render(fmt(output, as_json), data, lambda: _payment_view(f"payment {payment.payment_id}", data))


@app.command("show")
def payments_show(
    ctx: typer.Context,
    payment_id: Optional[str] = typer.Argument(None, metavar="ID", help="The vendor's payment id."),
    reference: Optional[str] = typer.Option(
        None, "--reference", "-r", help="Look up by your charge reference instead.", metavar="KEY"
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """What is recorded for one payment (from the local record; `reconcile` asks the vendor)."""
    from connectorctl.errors import InvalidInputError

    if (payment_id is None) == (reference is None):
        raise InvalidInputError("give either a payment ID or --reference")
    payment, intent = _service(ctx).show(payment_id, reference=reference)
    if payment is None and intent is None:
        raise InvalidInputError(
            f"no payment {'with reference ' + repr(reference) if reference else repr(payment_id)} is recorded"
        )
    data = payment.to_dict() if payment is not None else {"reference": reference, "status": None}
    if intent is not None:
        data["intent_state"] = intent.state.value
        data["intent_error"] = intent.error_code
    render(fmt(output, as_json), data, lambda: _payment_view(f"payment {data.get('payment_id') or reference}", data))


@app.command("list")
def payments_list(
    ctx: typer.Context,
    status: Optional[str] = typer.Option(
        None, "--status", help="Only this status (captured, refunded, uncertain, ...).", metavar="STATUS"
    ),
    since: Optional[str] = SinceOpt,
    reference: Optional[str] = typer.Option(
        None,
        "--reference",
        "-r",
        help="Only references starting with this (order:123 finds order:123:charge).",
        metavar="KEY",
    ),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Recorded payments, newest first, plus charges whose outcome is still uncertain."""

    from connectorctl.domain.payments import PaymentStatus
    from connectorctl.errors import InvalidInputError

    service = _service(ctx)
    choices = [s.value for s in PaymentStatus] + ["uncertain"]
    if status is not None and status not in choices:
        raise InvalidInputError(f"--status must be one of {', '.join(choices)}")
    start = _since(since)
    rows: list[dict[str, Any]] = []
    if status in (None, "uncertain"):
        rows += [
            {
                "payment_id": None,
                "reference": i.reference,
                "vendor": i.vendor,
                "status": "uncertain",
                "amount": i.params.get("amount"),
                "currency": i.params.get("currency"),
                "created_at": i.created_at,
            }
            for i in service.unresolved(since=start)
            if i.operation == "create" and i.reference.startswith(reference or "")
        ]
    if status != "uncertain":
        for payment, created in service.list_payments(
            status=PaymentStatus(status) if status else None, since=start, reference=reference
        ):
            rows.append({**payment.to_dict(), "created_at": created})

    def table() -> Any:
        from rich.markup import escape

        from connectorctl.cli.output import Column, grid, human_time

        columns = (
            Column("created (UTC)", drop=2),
            Column("vendor", drop=1),
            Column("payment id"),
            Column("reference"),
            Column("status"),
            Column("amount", wrap=True),
            Column("refunded", drop=3),
        )
        return grid(
            "payments",
            columns,
            (
                (
                    human_time(r["created_at"]),
                    r["vendor"],
                    escape(r["payment_id"] or "-"),
                    escape(r["reference"] or ""),
                    r["status"],
                    escape(r.get("amount_display") or f"{r['amount']} {r['currency']} (minor units)"),
                    str(r.get("amount_refunded") or ""),
                )
                for r in rows
            ),
        )

    filtered = status or since or reference
    hint = (
        "no payment matches (try fewer filters)"
        if filtered
        else "no payments yet; take one: connectorctl payments charge AMOUNT --reference KEY"
    )
    render(fmt(output, as_json), rows, table, empty=None if rows else hint)


@app.command("reconcile")
def payments_reconcile(
    ctx: typer.Context,
    since: Optional[str] = SinceOpt,
    vendor: Optional[str] = VendorOpt,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Ask the vendor about every uncertain operation and record its outcome (safe to run again)."""
    from connectorctl.cli.output import stderr
    from connectorctl.errors import ExitCode

    done = _service(ctx, vendor).reconcile(since=_since(since))
    rows = [r.to_dict() for r in done]
    left = sum(1 for r in done if r.after in ("uncertain", "skipped"))
    if done:
        stderr().print(f"reconciled {len(done) - left} of {len(done)} unsettled operation(s)", highlight=False)

    def table() -> Any:
        from rich.markup import escape

        from connectorctl.cli.output import Column, grid

        columns = (
            Column("reference"),
            Column("operation", drop=2),
            Column("vendor", drop=3),
            Column("was"),
            Column("now"),
            Column("payment id"),
            Column("note", drop=1, wrap=True),
        )
        return grid(
            "reconciliation",
            columns,
            (
                (
                    escape(r["reference"]),
                    r["operation"],
                    r["vendor"],
                    r["before"],
                    r["after"],
                    escape(r["payment_id"] or "-"),
                    escape(r["note"] or ""),
                )
                for r in rows
            ),
        )

    render(
        fmt(output, as_json),
        rows,
        table,
        empty=None if rows else "nothing to reconcile: every payment operation has a known outcome",
    )
    if left:
        raise typer.Exit(ExitCode.UNCERTAIN)
