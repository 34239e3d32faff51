"""The shipping service: quotes, labels bought exactly once, tracking, refunds, address checks.

Implements :class:`~connectorctl.domain.roles.ShippingProvider` over one
vendor.  A rate belongs to the vendor that quoted it, so there is no failover
chain: ``buy`` goes to the rate's own vendor.

Buying a label is not idempotent at EasyPost or Shippo, so it follows the
write-ahead rule shared with payments: the intent (one per vendor shipment)
is committed before the request; a definite refusal settles it ``failed``
(safe to try again); an answer that may have been lost settles it
``uncertain`` and the vendor is asked at once whether the shipment was bought.
A run that finds an unsettled intent (a killed process, an earlier lost
answer) asks the vendor the same question before it would ever send a
second purchase.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from connectorctl.adapters.shipping.base import ShippingAdapter
from connectorctl.domain.shipping import (
    Address,
    AddressVerification,
    Label,
    LabelFormat,
    Rate,
    Refund,
    Shipment,
    Tracking,
)
from connectorctl.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    InvalidInputError,
    OutcomeUncertainError,
    ValidationError,
    VendorRejectedError,
)
from connectorctl.resilience.pipeline import new_id
from connectorctl.shipping.records import ShippingRecords
from connectorctl.store.intents import Intent, IntentState, IntentStore, ReferenceConflictError

if TYPE_CHECKING:
    from connectorctl.gateway import Connector

CHANNEL = "shipping"
# Longer than a purchase can take (timeout, no retry, one lookup); a killed owner is noticed at once anyway.
LEASE_SECONDS = 300.0


class ShippingService:
    def __init__(self, connector: "Connector", vendor: str | None = None, *, tenant_id: str | None = None) -> None:
        self.connector = connector
        self.vendor = vendor or connector.settings.shipping_vendor
        self.tenant_id = tenant_id
        self.records = ShippingRecords(connector.db, connector.clock.time)
        self.intents = IntentStore(connector.db, connector.clock)

    def adapter(self, vendor: str | None = None) -> ShippingAdapter:
        slug = vendor or self.vendor
        if not slug:
            raise ConfigurationError(
                "no shipping vendor: set shipping_vendor in the config file or pass --vendor",
                hint="shipping_vendor: easypost   (or shippo)",
            )
        return self.connector.channel_adapter(slug, ShippingAdapter)

    # -- quotes -------------------------------------------------------------------
    def get_rates(self, shipment: Shipment) -> list[Rate]:
        adapter = self.adapter()
        shipment_id, rates = adapter.rates(shipment, tenant_id=self.tenant_id)
        self.records.save_quote(shipment_id, adapter.slug, shipment.to_dict(), shipment.reference, rates)
        return sorted(rates, key=lambda r: (r.price.currency, r.price.amount, r.carrier, r.service))

    def rate(self, rate_id: str) -> Rate:
        found = self.records.rate(rate_id, self.vendor if self.vendor else None)
        if not found:
            raise InvalidInputError(
                f"unknown rate {rate_id!r}", hint="quote first: connectorctl ship rates --from-file shipment.yaml"
            )
        if len(found) > 1:
            raise InvalidInputError(f"rate {rate_id!r} was quoted by several vendors: pass --vendor")
        return found[0]

    # -- labels -------------------------------------------------------------------
    def buy_label(
        self, rate_id: str, label_format: LabelFormat = LabelFormat.PDF, *, label_file: Path | None = None
    ) -> Label:
        """Buy the label for ``rate_id`` once; every later call returns that same label."""
        rate = self.rate(rate_id)
        adapter = self.adapter(rate.vendor)
        adapter.require_format(label_format)
        reference = f"label:{rate.vendor}:{rate.shipment_id}"
        params = {"rate_id": rate.id, "shipment_id": rate.shipment_id}
        try:
            intent = self.intents.begin(
                CHANNEL, reference, "buy_label", rate.vendor, params, lease_seconds=LEASE_SECONDS
            )
        except ReferenceConflictError:
            other = self.intents.get(CHANNEL, reference)
            bought_with = other.params.get("rate_id") if other else "?"
            raise ReferenceConflictError(
                f"shipment {rate.shipment_id} already has a label bought (or being bought) with rate {bought_with}; "
                "nothing was sent",
                hint="a shipment gets one label: void it with `connectorctl ship cancel` and quote again",
            ) from None
        if intent.state is IntentState.SUCCEEDED:
            label = replace(Label.from_dict(intent.outcome or {}), replayed=True)
            label = adapter.converted(label, label_format, tenant_id=self.tenant_id)
        elif intent.state is IntentState.INTENT and not self.intents.is_stale(intent):
            label = self._buy(adapter, rate, label_format, intent)
        else:  # failed before, uncertain, or abandoned by a process that died mid-purchase
            label = self._resume(adapter, rate, label_format, intent)
        self.records.record_label(label)
        return self._with_file(adapter, label, label_file)

    def _resume(self, adapter: ShippingAdapter, rate: Rate, label_format: LabelFormat, intent: Intent) -> Label:
        if intent.state is not IntentState.FAILED:
            found = adapter.purchased(rate, label_format, tenant_id=self.tenant_id)
            if found is not None:
                return replace(self._succeed(intent, found), replayed=True)
        return self._buy(adapter, rate, label_format, self.intents.claim(intent, lease_seconds=LEASE_SECONDS))

    def _buy(self, adapter: ShippingAdapter, rate: Rate, label_format: LabelFormat, intent: Intent) -> Label:
        try:
            label = adapter.buy(rate, label_format, tenant_id=self.tenant_id, correlation_id=new_id())
        except ConnectorError as exc:
            if not may_have_bought(exc):
                self.intents.settle(intent, IntentState.FAILED, error_code=exc.code, error_message=exc.message)
                raise
            uncertain = self.intents.settle(
                intent, IntentState.UNCERTAIN, error_code=exc.code, error_message=exc.message
            )
            return self._after_lost_answer(adapter, rate, label_format, uncertain, exc)
        except (
            BaseException
        ) as exc:  # Ctrl-C mid-request, or an answer we could not read: the vendor may have bought it
            code = "interrupted" if isinstance(exc, KeyboardInterrupt) else getattr(exc, "code", type(exc).__name__)
            self.intents.settle(
                intent, IntentState.UNCERTAIN, error_code=code, error_message="the purchase may have happened"
            )
            raise
        return self._succeed(intent, label)

    def _after_lost_answer(
        self, adapter: ShippingAdapter, rate: Rate, label_format: LabelFormat, intent: Intent, exc: ConnectorError
    ) -> Label:
        """Ask the vendor whether the lost purchase happened; never buy again on a guess."""
        try:
            found = adapter.purchased(rate, label_format, tenant_id=self.tenant_id)
        except ConnectorError as lookup:
            raise OutcomeUncertainError(
                f"{adapter.slug}: the label for rate {rate.id} may have been bought ({exc.code}), and asking the "
                f"vendor failed ({lookup.code}): its outcome is uncertain",
                service=adapter.slug,
                http_status=exc.http_status,
                hint="it will not be bought twice: run the same command again to settle it",
            ) from exc
        if found is None:
            self.intents.settle(intent, IntentState.FAILED, error_code=exc.code, error_message=exc.message)
            exc.hint = "the vendor confirms no label was bought: it is safe to run the command again"
            raise exc
        return self._succeed(intent, found)

    def _succeed(self, intent: Intent, label: Label) -> Label:
        self.intents.settle(
            intent, IntentState.SUCCEEDED, outcome=label.to_dict(), vendor_id=label.transaction_id or label.shipment_id
        )
        return label

    def _with_file(self, adapter: ShippingAdapter, label: Label, label_file: Path | None) -> Label:
        if not label.label_url:
            return label
        content = adapter.download(label.label_url, tenant_id=self.tenant_id)
        if label_file is None:
            return replace(label, content=content)
        label_file.write_bytes(content)
        label = replace(label, content=content, path=str(label_file))
        self.records.record_label(label)
        return label

    # -- tracking, refunds, addresses --------------------------------------------
    def track(self, tracking_number: str, carrier: str | None = None) -> Tracking:
        if not tracking_number.strip():
            raise InvalidInputError("a tracking number is required")
        tracking = self.adapter().track(tracking_number.strip(), carrier, tenant_id=self.tenant_id)
        self.records.apply_tracking(tracking)
        return tracking

    def cancel(self, shipment_id: str) -> Refund:
        """Ask the vendor to void (refund) the label of ``shipment_id`` (our record's id or Shippo's transaction id)."""
        known = [r for r in self.records.find(shipment_id) if not self.vendor or r["vendor"] == self.vendor]
        if len(known) > 1:
            raise InvalidInputError(f"{shipment_id!r} matches shipments of several vendors: pass --vendor")
        vendor = known[0]["vendor"] if known else self.vendor
        transaction_id = known[0]["transaction_id"] if known else shipment_id
        record_id = known[0]["shipment_id"] if known else shipment_id
        refund = self.adapter(vendor).refund(record_id, transaction_id, tenant_id=self.tenant_id)
        self.records.record_refund(self.adapter(vendor).slug, record_id, refund.status)
        return refund

    def verify_address(self, address: Address) -> AddressVerification:
        return self.adapter().verify_address(address, tenant_id=self.tenant_id)


def may_have_bought(exc: ConnectorError) -> bool:
    """False only when the failure proves no label was bought: the vendor refused, or never saw the request."""
    if exc.vendor_processed is False:
        return False
    return not isinstance(exc, (ValidationError, AuthenticationError, VendorRejectedError))
