"""``connectorctl ship rates|buy|track|cancel|verify-address``: a thin shell over the shipping service.

Every command renders one result object: a table for people, ``-o json`` /
``-o jsonl`` for scripts.  A label is bought once per shipment however often
``buy`` is run (or killed and run again); a re-run prints the same label.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any, Optional

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    YesOption,
    confirm,
    fmt,
    grid,
    human_time,
    kv_table,
    render,
    state,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Shipping: quote rates, buy labels, track parcels, void labels, check addresses.")
_Vendor = typer.Option(
    None, "--vendor", help="easypost or shippo (default: shipping_vendor from the config).", metavar="VENDOR"
)
_Tenant = typer.Option(None, "--tenant", help="Tenant whose credentials and logs to use.", metavar="TENANT")
FINAL = ("delivered", "return_to_sender", "failure")


def _service(ctx: typer.Context, vendor: str | None, tenant: str | None) -> Any:
    return state(ctx).connector().shipping(vendor, tenant_id=tenant)


@app.command("rates")
def ship_rates(
    ctx: typer.Context,
    from_file: Path = typer.Option(
        ...,
        "--from-file",
        help="Shipment YAML: from, to, parcels (see docs/shipment.yaml).",
        dir_okay=False,
        metavar="FROM_FILE",
    ),
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Quote every carrier service for a shipment, cheapest first; buy one with `ship buy RATE_ID`."""
    from connectorctl.shipping.loader import load_shipment

    shipment = load_shipment(from_file)
    rates = [r.to_dict() for r in _service(ctx, vendor, tenant).get_rates(shipment)]

    def table() -> Any:
        from rich.markup import escape

        columns = (
            Column("rate id"),
            Column("carrier"),
            Column("service", wrap=True),
            Column("price", right=True),
            Column("days", drop=1, right=True),
        )
        return grid(
            f"rates for shipment {rates[0]['shipment_id']} ({rates[0]['vendor']}), cheapest first",
            columns,
            (
                (
                    escape(r["id"]),
                    escape(r["carrier"]),
                    escape(r["service"]),
                    f"{r['price']} {r['currency']}",
                    str(r["delivery_days"] or "-"),
                )
                for r in rates
            ),
            caption="buy one: connectorctl ship buy RATE_ID",
        )

    none = "the vendor offers no rate for this shipment: check the addresses and the parcel in the file"
    render(fmt(output, as_json), rates, table, empty=None if rates else none)


@app.command("buy")
def ship_buy(
    ctx: typer.Context,
    rate_id: str = typer.Argument(..., metavar="RATE_ID", help="A rate id from `ship rates`."),
    label_file: Optional[Path] = typer.Option(
        None,
        "--label-file",
        help="Where to save the label (default: labels/ under $CONNECTORCTL_HOME).",
        dir_okay=False,
        metavar="LABEL_FILE",
    ),
    label_format: str = typer.Option("pdf", "--format", help="pdf, png or zpl.", metavar="FORMAT"),
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Buy the label for a rate: once per shipment, however often this runs."""
    from connectorctl.domain.shipping import LabelFormat
    from connectorctl.errors import InvalidInputError

    try:
        chosen = LabelFormat(label_format.lower())
    except ValueError:
        raise InvalidInputError(f"--format must be pdf, png or zpl, got {label_format!r}") from None
    service = _service(ctx, vendor, tenant)
    if label_file is None:
        rate = service.rate(rate_id)
        label_file = state(ctx).settings().home / "labels" / f"{rate.vendor}-{rate.shipment_id}.{chosen.value}"
    label_file.parent.mkdir(parents=True, exist_ok=True)
    label = service.buy_label(rate_id, chosen, label_file=label_file).to_dict()
    title = "label (already bought: the same label again)" if label["replayed"] else "label bought"
    render(fmt(output, as_json), label, lambda: kv_table(title, label.items()))


@app.command("track")
def ship_track(
    ctx: typer.Context,
    tracking_number: str = typer.Argument(..., metavar="TRACKING", help="The carrier's tracking number."),
    carrier: Optional[str] = typer.Option(
        None, "--carrier", help="Carrier (usps, ups, fedex, ...): Shippo needs it.", metavar="CARRIER"
    ),
    follow: bool = typer.Option(
        False, "--follow", "-f", help="Keep polling and print new events until the parcel's journey ends."
    ),
    interval: float = typer.Option(
        60.0, "--interval", min=0.1, max=86400, help="Seconds between polls with --follow.", metavar="INTERVAL"
    ),
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Where a parcel is: normalized status plus every event with time, place and the carrier's words."""
    service = _service(ctx, vendor, tenant)
    out = fmt(output, as_json)
    seen: set[tuple[Any, ...]] = set()
    while True:
        tracking = service.track(tracking_number, carrier).to_dict()
        new = [e for e in tracking["events"] if tuple(e.values()) not in seen]
        seen.update(tuple(e.values()) for e in new)
        if not follow:
            render(out, tracking, partial(_tracking_table, tracking, tracking["events"]))
            return
        if out is OutputFormat.table:
            render(out, tracking, partial(_tracking_table, tracking, new))
        else:
            render(
                OutputFormat.jsonl, [{"tracking_number": tracking["tracking_number"], **e} for e in new], lambda: None
            )
        if tracking["status"] in FINAL:
            return
        time.sleep(interval)


def _tracking_table(tracking: dict[str, Any], events: list[dict[str, Any]]) -> Any:
    from rich.markup import escape

    columns = (
        Column("time (UTC)"),
        Column("status"),
        Column("location", drop=1, wrap=True),
        Column("carrier says", wrap=True),
    )
    return grid(
        escape(f"{tracking['tracking_number']} ({tracking['carrier'] or tracking['vendor']}): {tracking['status']}"),
        columns,
        (
            (human_time(e["occurred_at"]), e["status"], escape(e["location"] or "-"), escape(e["message"] or ""))
            for e in events
        ),
        caption=f"estimated delivery {human_time(tracking['estimated_delivery'])}"
        if tracking["estimated_delivery"]
        else None,
    )


@app.command("cancel")
def ship_cancel(
    ctx: typer.Context,
    shipment_id: str = typer.Argument(
        ..., metavar="SHIPMENT_ID", help="The shipment whose label to void (Shippo: or its transaction id)."
    ),
    yes: bool = YesOption,
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Void a label and ask for the refund, which carriers settle over days (asks first; --yes in scripts)."""
    service = _service(ctx, vendor, tenant)
    confirm(f"void the label of shipment {shipment_id}? A voided label cannot be used again.", yes)
    refund = service.cancel(shipment_id).to_dict()
    render(fmt(output, as_json), refund, lambda: kv_table("refund requested", refund.items()))


@app.command("verify-address")
def ship_verify_address(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="Recipient name.", metavar="NAME"),
    street1: str = typer.Option(..., "--street1", help="Street and number.", metavar="STREET"),
    city: str = typer.Option(..., "--city", help="City.", metavar="CITY"),
    zip_code: str = typer.Option(..., "--zip", help="Postal code.", metavar="ZIP"),
    country: str = typer.Option(..., "--country", help="ISO 3166 two-letter country code, e.g. US.", metavar="COUNTRY"),
    street2: Optional[str] = typer.Option(None, "--street2", help="Second address line.", metavar="LINE"),
    state_code: Optional[str] = typer.Option(None, "--state", help="State or province.", metavar="STATE"),
    company: Optional[str] = typer.Option(None, "--company", help="Company.", metavar="COMPANY"),
    vendor: Optional[str] = _Vendor,
    tenant: Optional[str] = _Tenant,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Ask the vendor whether an address is deliverable; exit 1 when it is not."""
    from connectorctl.shipping.loader import address_from

    fields = {
        "name": name,
        "street1": street1,
        "city": city,
        "zip": zip_code,
        "country": country,
        "street2": street2,
        "state": state_code,
        "company": company,
    }
    address = address_from({k: v for k, v in fields.items() if v is not None}, "address")
    result = _service(ctx, vendor, tenant).verify_address(address).to_dict()

    def table() -> Any:
        rows = [
            ("valid", result["valid"]),
            *(result["address"] or {}).items(),
            *(("message", m) for m in result["messages"]),
        ]
        return kv_table(f"address check by {result['vendor']}", rows)

    render(fmt(output, as_json), result, table)
    if not result["valid"]:
        raise typer.Exit(1)
