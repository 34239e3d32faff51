"""The flow every HTTP shipping vendor shares; vendor modules only translate.

A vendor module turns each operation into one :class:`VendorRequest`
(``build_*``) and the vendor's 2xx answer back into domain objects
(``parse_*``).  Credentials, the pipeline :class:`Call` (rate limit, circuit,
retry, one log row per attempt), secret scrubbing and error mapping happen
here and in :mod:`connectorctl.adapters.http`.

Buying a label is the one call that is not idempotent at either vendor: it
runs with ``idempotent=False`` so the pipeline never repeats it after an
answer that may have been lost.  Deciding whether a label already exists
(the write-ahead intent, asking the vendor) is the shipping service's job,
through :meth:`ShippingAdapter.purchased`.
"""

from __future__ import annotations

from typing import Any, Callable

import httpx

from connectorctl.adapters.base import Adapter
from connectorctl.adapters.email.common import HttpEmailAdapter, VendorRequest
from connectorctl.adapters.http import HttpAdapterMixin
from connectorctl.domain.shipping import Address, AddressVerification, Label, LabelFormat, Rate, Refund, Shipment, Tracking
from connectorctl.domain.values import Credentials
from connectorctl.errors import CredentialNotFoundError, UnsupportedFeatureError

MAX_LABEL_BYTES = 20 * 1024 * 1024  # a label is a page; anything larger is not a label


class ShippingAdapter(HttpAdapterMixin, Adapter):
    channel = "shipping"
    capabilities: frozenset[str] = frozenset()
    label_formats: frozenset[LabelFormat] = frozenset(LabelFormat)

    # -- what vendor modules implement ------------------------------------------
    def auth_headers(self, creds: Credentials) -> dict[str, str]:
        raise NotImplementedError

    def build_rates(self, shipment: Shipment, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_rates(self, response: httpx.Response) -> tuple[str, list[Rate]]:
        """(the vendor's shipment id, its rates)."""
        raise NotImplementedError

    def build_buy(self, rate: Rate, label_format: LabelFormat, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_buy(self, response: httpx.Response, rate: Rate, label_format: LabelFormat) -> Label:
        raise NotImplementedError

    def build_purchase_lookup(self, rate: Rate, creds: Credentials) -> VendorRequest:
        """A read that shows whether ``rate``'s shipment was bought (the answer to a lost buy)."""
        raise NotImplementedError

    def parse_purchase_lookup(self, response: httpx.Response, rate: Rate, label_format: LabelFormat) -> Label | None:
        raise NotImplementedError

    def build_track(self, tracking_number: str, carrier: str | None, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_track(self, response: httpx.Response) -> Tracking:
        raise NotImplementedError

    def build_refund(self, shipment_id: str, transaction_id: str | None, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_refund(self, response: httpx.Response, shipment_id: str) -> Refund:
        raise NotImplementedError

    def build_verify_address(self, address: Address, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_verify_address(self, response: httpx.Response) -> AddressVerification:
        raise NotImplementedError

    def build_label_conversion(self, label: Label, label_format: LabelFormat, creds: Credentials) -> VendorRequest | None:
        """A vendor that fixes the format after purchase (EasyPost) asks for another file here."""
        return None

    def parse_label_conversion(self, response: httpx.Response, label: Label, label_format: LabelFormat) -> Label:
        raise NotImplementedError

    def tracking_from_webhook(self, payload: Any) -> Tracking | None:
        """The tracking in a verified webhook body, or None when the event is not a tracking update."""
        raise NotImplementedError

    # -- the flow ---------------------------------------------------------------
    execute = HttpEmailAdapter.execute  # the one request path (VendorRequest -> Call -> pipeline) the email vendors use

    def credentials(self, tenant_id: str | None) -> Credentials:
        creds = self.connector.credentials.get(self.slug, tenant_id)
        if not creds.data.get("api_key"):
            raise CredentialNotFoundError(f"{self.slug} credentials lack api_key", service=self.slug, hint=f"connectorctl creds set {self.slug}")
        return creds

    def require(self, shipment: Shipment) -> None:  # type: ignore[override]
        missing = shipment.features() - self.capabilities
        if missing:
            raise UnsupportedFeatureError(f"{self.slug} cannot ship {', '.join(sorted(missing))}", service=self.slug)

    def require_format(self, label_format: LabelFormat) -> None:
        if label_format not in self.label_formats:
            raise UnsupportedFeatureError(f"{self.slug} cannot produce {label_format.value} labels", service=self.slug)

    def _run(self, build: Callable[[Credentials], VendorRequest], operation: str, parse: Callable[[httpx.Response], Any], *,
             tenant_id: str | None, correlation_id: str | None = None, idempotent: bool = True) -> Any:
        creds = self.credentials(tenant_id)
        return self.execute(build(creds), operation, creds, parse, tenant_id=tenant_id, correlation_id=correlation_id,
                            idempotent=idempotent).value

    def rates(self, shipment: Shipment, *, tenant_id: str | None = None) -> tuple[str, list[Rate]]:
        self.require(shipment)
        # Creating a shipment only quotes; nothing is bought or charged, so a retry is harmless.
        return self._run(lambda c: self.build_rates(shipment, c), "get_rates", self.parse_rates, tenant_id=tenant_id)

    def buy(self, rate: Rate, label_format: LabelFormat, *, tenant_id: str | None = None, correlation_id: str | None = None) -> Label:
        self.require_format(label_format)
        label: Label = self._run(lambda c: self.build_buy(rate, label_format, c), "buy_label",
                                 lambda r: self.parse_buy(r, rate, label_format), tenant_id=tenant_id,
                                 correlation_id=correlation_id, idempotent=False)
        return self.converted(label, label_format, tenant_id=tenant_id)

    def purchased(self, rate: Rate, label_format: LabelFormat, *, tenant_id: str | None = None, correlation_id: str | None = None) -> Label | None:
        label: Label | None = self._run(lambda c: self.build_purchase_lookup(rate, c), "find_label",
                                        lambda r: self.parse_purchase_lookup(r, rate, label_format), tenant_id=tenant_id,
                                        correlation_id=correlation_id)
        return self.converted(label, label_format, tenant_id=tenant_id) if label else None

    def converted(self, label: Label, label_format: LabelFormat, *, tenant_id: str | None) -> Label:
        if label.label_format is label_format:
            return label
        creds = self.credentials(tenant_id)
        request = self.build_label_conversion(label, label_format, creds)
        if request is None:
            return label
        return self.execute(request, "convert_label", creds, lambda r: self.parse_label_conversion(r, label, label_format),
                            tenant_id=tenant_id, idempotent=True).value

    def track(self, tracking_number: str, carrier: str | None = None, *, tenant_id: str | None = None) -> Tracking:
        return self._run(lambda c: self.build_track(tracking_number, carrier, c), "track", self.parse_track, tenant_id=tenant_id)

    def refund(self, shipment_id: str, transaction_id: str | None = None, *, tenant_id: str | None = None) -> Refund:
        # A refund request for a label already refunded is refused by the vendor, never done twice.
        return self._run(lambda c: self.build_refund(shipment_id, transaction_id, c), "refund_label",
                         lambda r: self.parse_refund(r, shipment_id), tenant_id=tenant_id)

    def verify_address(self, address: Address, *, tenant_id: str | None = None) -> AddressVerification:
        return self._run(lambda c: self.build_verify_address(address, c), "verify_address", self.parse_verify_address, tenant_id=tenant_id)

    def download(self, url: str, *, tenant_id: str | None = None) -> bytes:
        """The label file.  Vendors serve it from public storage: our credentials never go with it."""
        request = VendorRequest("GET", url, log={"url": url})
        empty = Credentials(self.slug, self.connector.credentials.get(self.slug, tenant_id).auth_method, {}, source="none")
        return self.execute(request, "download_label", empty, _label_bytes, tenant_id=tenant_id, idempotent=True).value


def _label_bytes(response: httpx.Response) -> bytes:
    if len(response.content) > MAX_LABEL_BYTES:
        raise ValueError("label file too large")
    return response.content
