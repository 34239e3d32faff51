"""A tiny HTTP email vendor adapter for ``connectorctl demo`` and tests of the real pipeline.

It speaks to :class:`connectorctl.demo.DemoVendorServer` (or anything that
answers ``POST {base_url}/v1/messages`` with ``{"id": ...}``), so the demo
exercises the same httpx edge, retry, breaker and log as a real vendor.  Every
send carries an ``Idempotency-Key`` (the message's own, else a new one), which
is what lets the pipeline retry it safely.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.email.common import HttpEmailAdapter, VendorRequest
from connectorctl.adapters.sinks import _accepted
from connectorctl.domain.messages import EmailMessage, SendResult
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError
from connectorctl.resilience.pipeline import new_id
from connectorctl.settings import VendorSettings


class DemoEmailAdapter(HttpEmailAdapter[VendorSettings]):
    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        return super().send(
            replace(message, idempotency_key=message.idempotency_key or new_id()),
            tenant_id=tenant_id,
            correlation_id=correlation_id,
        )

    def precheck(self, message: EmailMessage) -> None:
        if not self.base_url:
            raise ConfigurationError(
                "vendors.demo.base_url is not set", hint="the demo vendor only exists while `connectorctl demo` runs"
            )
        self.require(message)

    def idempotency_key(self, message: EmailMessage) -> str | None:
        return message.idempotency_key

    def build_send(self, message: EmailMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        payload = {"to": list(message.to), "subject": message.subject, "text": message.text}
        return VendorRequest(
            "POST", "/v1/messages", json=payload, headers={"Idempotency-Key": message.idempotency_key or ""}
        )

    def parse_send(self, response: httpx.Response, message: EmailMessage) -> SendResult:
        return _accepted(self.slug, str(response.json().get("id") or message.idempotency_key), message.recipients, None)


VENDOR = Vendor("demo", "local HTTP vendor that `connectorctl demo` starts", {"email": DemoEmailAdapter}, auth=())
