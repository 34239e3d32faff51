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

from typing import Any, Callable, ClassVar

import httpx

from connectorctl.adapters.base import OptionsT
from connectorctl.adapters.http import HttpAdapter, VendorRequest
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
from connectorctl.domain.values import Credentials
from connectorctl.errors import UnsupportedFeatureError

MAX_LABEL_BYTES = 20 * 1024 * 1024  # a label is a page; anything larger is not a label


class ShippingAdapter(HttpAdapter[OptionsT]):
    channel = "shipping"
    capabilities: ClassVar[frozenset[str]] = frozenset()
    label_formats: frozenset[LabelFormat] = frozenset(LabelFormat)
    api_prefix = ""  # joined between the base URL and each path ("/v2" at EasyPost)
    converts_labels = False  # True: the format is fixed at purchase and converted afterwards (EasyPost)

    # -- what vendor modules implement ------------------------------------------
    def auth_headers(self, creds: Credentials) -> dict[str, str]:
        raise NotImplementedError

    def request(self, method: str, path: str, creds: Credentials, **kwargs: Any) -> VendorRequest:
        """A request to the vendor's API with its auth headers (label downloads go without them)."""
        return VendorRequest(method, self.api_prefix + path, headers=self.auth_headers(creds), **kwargs)

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

    converts_labels = False  # True: the format is fixed at purchase and converted afterwards (EasyPost)

    def build_label_conversion(self, label: Label, label_format: LabelFormat, creds: Credentials) -> VendorRequest:
        raise NotImplementedError

    def parse_label_conversion(self, response: httpx.Response, label: Label, label_format: LabelFormat) -> Label:
        raise NotImplementedError

    def tracking_from_webhook(self, payload: Any) -> Tracking | None:
        """The tracking in a verified webhook body, or None when the event is not a tracking update."""
        raise NotImplementedError

    # -- the flow ---------------------------------------------------------------
    def require_format(self, label_format: LabelFormat) -> None:
        if label_format not in self.label_formats:
            raise UnsupportedFeatureError(f"{self.slug} cannot produce {label_format.value} labels", service=self.slug)

    def _run(
        self,
        operation: str,
        build: Callable[[Credentials], VendorRequest],
        parse: Callable[[httpx.Response], Any],
        *,
        tenant_id: str | None,
        correlation_id: str | None = None,
        idempotent: bool = True,
    ) -> Any:
        return self.execute(
            operation, build, parse, tenant_id=tenant_id, correlation_id=correlation_id, idempotent=idempotent
        ).value

    def rates(self, shipment: Shipment, *, tenant_id: str | None = None) -> tuple[str, list[Rate]]:
        self.require(shipment)
        # Creating a shipment only quotes; nothing is bought or charged, so a retry is harmless.
        return self._run("get_rates", lambda c: self.build_rates(shipment, c), self.parse_rates, tenant_id=tenant_id)

    def buy(
        self, rate: Rate, label_format: LabelFormat, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> Label:
        self.require_format(label_format)
        label: Label = self._run(
            "buy_label",
            lambda c: self.build_buy(rate, label_format, c),
            lambda r: self.parse_buy(r, rate, label_format),
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            idempotent=False,
        )
        return self.converted(label, label_format, tenant_id=tenant_id)

    def purchased(
        self, rate: Rate, label_format: LabelFormat, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> Label | None:
        label: Label | None = self._run(
            "find_label",
            lambda c: self.build_purchase_lookup(rate, c),
            lambda r: self.parse_purchase_lookup(r, rate, label_format),
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )
        return self.converted(label, label_format, tenant_id=tenant_id) if label else None

    def converted(self, label: Label, label_format: LabelFormat, *, tenant_id: str | None) -> Label:
        if label.label_format is label_format:
            return label
        if not self.converts_labels:
            raise UnsupportedFeatureError(
                f"{self.slug} fixes a label's format at purchase: this one is {label.label_format.value}",
                service=self.slug,
                hint=f"ask for --format {label.label_format.value}",
            )
        return self._run(
            "convert_label",
            lambda c: self.build_label_conversion(label, label_format, c),
            lambda r: self.parse_label_conversion(r, label, label_format),
            tenant_id=tenant_id,
        )

    def track(self, tracking_number: str, carrier: str | None = None, *, tenant_id: str | None = None) -> Tracking:
        return self._run(
            "track", lambda c: self.build_track(tracking_number, carrier, c), self.parse_track, tenant_id=tenant_id
        )

    def refund(self, shipment_id: str, transaction_id: str | None = None, *, tenant_id: str | None = None) -> Refund:
        # A refund request for a label already refunded is refused by the vendor, never done twice.
        return self._run(
            "refund_label",
            lambda c: self.build_refund(shipment_id, transaction_id, c),
            lambda r: self.parse_refund(r, shipment_id),
            tenant_id=tenant_id,
        )

    def verify_address(self, address: Address, *, tenant_id: str | None = None) -> AddressVerification:
        return self._run(
            "verify_address",
            lambda c: self.build_verify_address(address, c),
            self.parse_verify_address,
            tenant_id=tenant_id,
        )

    def download(self, url: str, *, tenant_id: str | None = None) -> bytes:
        """The label file.  Vendors serve it from public storage: our credentials never go with it."""
        return self._run(
            "download_label",
            lambda creds: VendorRequest("GET", url, log={"url": url}),
            _label_bytes,
            tenant_id=tenant_id,
        )


def _label_bytes(response: httpx.Response) -> bytes:
    if len(response.content) > MAX_LABEL_BYTES:
        raise ValueError("label file too large")
    return response.content
