"""A tiny HTTP email vendor adapter for ``connectorctl demo`` and tests of the real pipeline.

It speaks to :class:`connectorctl.demo.DemoVendorServer` (or anything that
answers ``POST {base_url}/v1/messages`` with ``{"id": ...}``), so the demo
exercises the same httpx edge, retry, breaker and log as a real vendor.
"""

from __future__ import annotations

from typing import Any

from connectorctl.adapters.base import EmailAdapter
from connectorctl.adapters.http import HttpAdapterMixin
from connectorctl.adapters.sinks import _accepted
from connectorctl.domain.messages import EmailMessage, SendResult
from connectorctl.errors import ConfigurationError
from connectorctl.resilience.pipeline import Call, new_id


class DemoEmailAdapter(HttpAdapterMixin, EmailAdapter):
    def send(self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        if not self.base_url:
            raise ConfigurationError("vendors.demo.base_url is not set", hint="the demo vendor only exists while `connectorctl demo` runs")
        self.require(message)
        correlation_id = correlation_id or new_id()
        key = new_id()
        payload = {"to": list(message.to), "subject": message.subject, "text": message.text}
        url = f"{self.base_url}/v1/messages"
        call = Call(self.slug, "send_email", url, "POST", request_data=payload, idempotency_key=key,
                    tenant_id=tenant_id, correlation_id=correlation_id)

        def parse(response: Any) -> str:
            return str(response.json().get("id") or key)

        sent = self.http(call, lambda client: client.post(url, json=payload, headers={"Idempotency-Key": key}), parse)
        return _accepted(self.slug, sent.value, message.recipients, correlation_id)
