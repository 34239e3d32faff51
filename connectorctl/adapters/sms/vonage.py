"""Vonage (formerly Nexmo) SMS API, plus the Account API balance.

Contract, from Vonage's SMS API reference and troubleshooting guide
(developer.vonage.com/messaging/sms, /api-errors/sms) and the Account API
OpenAPI (``GET https://rest.nexmo.com/account/get-balance``):

* ``POST https://rest.nexmo.com/sms/json``, form-urlencoded: ``api_key``,
  ``api_secret``, ``from``, ``to`` (international digits, **no** ``+``), ``text``;
  ``type=unicode`` for text outside GSM-7; ``client-ref`` (we send the
  correlation id, so a delivery receipt can be traced back to our log).
* The answer is **HTTP 200 even for errors**: ``{"message-count": "1",
  "messages": [{"status": "0", "message-id", "to", "remaining-balance",
  "message-price", "network"}]}``; a non-zero ``status`` with ``error-text``
  is a failure (1 throttled, 2/3 bad parameters, 4 bad credentials,
  5 internal error, 6 unroutable number, 7 barred, 9 no credit, 29 not on
  the trial allow-list, 33 de-activated number, ...).  A long text is split
  into parts, one item each; the send is ok only if every part is.
* HTTP-level 401/429/5xx are not documented for this endpoint but are
  handled the same way as for every vendor (a proxy or outage can answer them).
* Balance: Basic ``api_key:api_secret``, 200 ``{"value": 10.28, "autoReload": false}`` (EUR).
"""

from __future__ import annotations

from typing import Any, Mapping

import httpx

from connectorctl.adapters.base import SmsAdapter
from connectorctl.adapters.http import HttpAdapterMixin
from connectorctl.adapters.sms.common import (
    RecipientRefusedError, basic_auth, basic_header, e164, is_gsm7, refused_result, secrets_of, send_built, sender, status_callback,
)
from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import Credentials
from connectorctl.errors import (
    AuthenticationError, ConfigurationError, ConnectorError, InvalidInputError, RateLimitedError,
    ValidationError, VendorRejectedError, VendorUnavailableError,
)
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id

AUTH_STATUSES = frozenset({"4", "14", "32"})
RATE_STATUSES = frozenset({"1", "10"})
VALIDATION_STATUSES = frozenset({"2", "3", "12", "15", "22", "23"})
RECIPIENT_STATUSES: Mapping[str, DeliveryStatus] = {
    "6": DeliveryStatus.INVALID,    # unroutable / unrecognised number prefix
    "7": DeliveryStatus.REJECTED,   # number barred
    "29": DeliveryStatus.REJECTED,  # not on the trial account's allow-list
    "33": DeliveryStatus.INVALID,   # number de-activated
}


class VonageSmsAdapter(HttpAdapterMixin, SmsAdapter):
    default_base_url = "https://rest.nexmo.com"

    def _creds(self, tenant_id: str | None) -> Credentials:
        return self.connector.credentials.get(self.slug, tenant_id)

    def form(self, message: SmsMessage, api_key: str, api_secret: str, client_ref: str | None) -> dict[str, str]:
        to = e164(message.to)
        from_ = sender(message, self.config.from_number, slug=self.slug)
        if not from_:
            raise ConfigurationError(f"{self.slug}: no sender: set vendors.{self.slug}.from_number or pass --from")
        if not message.body:
            raise InvalidInputError("an SMS needs a body")
        fields = {"api_key": api_key, "api_secret": api_secret, "from": from_.lstrip("+"), "to": to.lstrip("+"), "text": message.body}
        if not is_gsm7(message.body):
            fields["type"] = "unicode"
        if client_ref:
            fields["client-ref"] = client_ref[:100]
        callback = status_callback(message, self.config.status_callback)
        if callback:
            fields.update({"callback": callback, "status-report-req": "1"})
        return fields

    def build_request(self, message: SmsMessage, credentials: Credentials | None, client_ref: str | None = None) -> httpx.Request:
        key, secret = basic_auth(credentials)
        return httpx.Request("POST", f"{self.base_url}/sms/json", data=self.form(message, key, secret, client_ref),
                             headers={"Accept": "application/json"})

    def send(self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        correlation_id = correlation_id or new_id()
        self.form(message, "", "", None)  # validate number and sender before credentials or the network
        creds = self._creds(tenant_id)
        request = self.build_request(message, creds, correlation_id)
        logged = {k: v for k, v in self.form(message, "", "", correlation_id).items() if k not in ("api_key", "api_secret")}
        call = Call(self.slug, "send_sms", str(request.url), "POST", request_data=logged, idempotency_key=message.idempotency_key,
                    tenant_id=tenant_id, correlation_id=correlation_id, secrets=secrets_of(creds))
        to = e164(message.to)
        try:
            parts = self.http(call, lambda c: send_built(c, request), self._parse).value
        except RecipientRefusedError as exc:
            return refused_result(self.slug, to, exc, correlation_id)
        message_id = parts[0].get("message-id") if parts else None
        return SendResult(self.slug, message_id, (RecipientResult(to, DeliveryStatus.ACCEPTED, message_id),), correlation_id,
                          raw={"messages": parts})

    def _parse(self, response: httpx.Response) -> list[Mapping[str, Any]]:
        """Raise for the first non-zero part status (inside the pipeline, so the log row is a failure)."""
        try:
            body = response.json()
        except ValueError:
            raise VendorUnavailableError(f"{self.slug}: HTTP {response.status_code} with a body that is not JSON", service=self.slug,
                                         http_status=response.status_code) from None
        parts = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(parts, list) or not parts:
            raise VendorUnavailableError(f"{self.slug}: answer without messages", service=self.slug, http_status=response.status_code, response_data=body)
        for part in parts:
            status = str(part.get("status", ""))
            if status != "0":
                raise self._status_error(status, str(part.get("error-text") or "no error-text"), response.status_code, body)
        return parts

    def _status_error(self, status: str, text: str, http_status: int, body: Any) -> ConnectorError:
        detail = f"{self.slug}: status {status}: {text}"
        kwargs: dict[str, Any] = {"service": self.slug, "http_status": http_status, "response_data": body}
        if status in RATE_STATUSES:
            return RateLimitedError(detail, **kwargs)  # throttled: not processed, safe to retry later
        if status in AUTH_STATUSES:
            return AuthenticationError(detail, hint=f"check the credentials: connectorctl creds show {self.slug}", **kwargs)
        if status in VALIDATION_STATUSES:
            return ValidationError(detail, **kwargs)
        if status in RECIPIENT_STATUSES:
            return RecipientRefusedError(detail, recipient_status=RECIPIENT_STATUSES[status], reason=f"vonage {status}: {text}", **kwargs)
        if status == "5":
            return VendorUnavailableError(detail, **kwargs)  # the platform's internal error: like a 500
        return VendorRejectedError(detail, **kwargs)  # 8 barred account, 9 no credit, 11 HTTP not enabled, ...

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping) and isinstance(body.get("error-code-label"), str):
            return body["error-code-label"]
        if isinstance(body, Mapping) and isinstance(body.get("title"), str):  # RFC 7807 answers of newer Vonage APIs
            return f"{body['title']}: {body.get('detail', '')}".rstrip(": ")
        return super().error_message(response, body)

    def _balance(self, tenant_id: str | None, operation: str) -> VendorResponse:
        creds = self._creds(tenant_id)
        key, secret = basic_auth(creds)
        url = f"{self.base_url}/account/get-balance"
        call = Call(self.slug, operation, url, "GET", idempotent=True, tenant_id=tenant_id, secrets=secrets_of(creds))
        return self.http(call, lambda c: c.get(url, headers={"Authorization": basic_header(key, secret), "Accept": "application/json"}), lambda r: r.json())

    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        """The balance read: authenticated, read-only, free."""
        return self._balance(tenant_id, "verify_credentials")

    def check_balance(self, tenant_id: str | None = None) -> Mapping[str, Any]:
        body = self._balance(tenant_id, "check_balance").value
        return {"vendor": self.slug, "balance": str(body.get("value")), "currency": "EUR", "auto_reload": body.get("autoReload")}
