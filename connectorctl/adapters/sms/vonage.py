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

from connectorctl.adapters.declaration import AuthScheme, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.sms.common import (
    DeliveryReportOptions,
    HttpSmsAdapter,
    RecipientRefusedError,
    basic_auth,
    e164,
    is_gsm7,
    sender,
    status_callback,
)
from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    RateLimitedError,
    ValidationError,
    VendorRejectedError,
    VendorUnavailableError,
)

AUTH_STATUSES = frozenset({"4", "14", "32"})
RATE_STATUSES = frozenset({"1", "10"})
VALIDATION_STATUSES = frozenset({"2", "3", "12", "15", "22", "23"})
RECIPIENT_STATUSES: Mapping[str, DeliveryStatus] = {
    "6": DeliveryStatus.INVALID,  # unroutable / unrecognised number prefix
    "7": DeliveryStatus.REJECTED,  # number barred
    "29": DeliveryStatus.REJECTED,  # not on the trial account's allow-list
    "33": DeliveryStatus.INVALID,  # number de-activated
}


class VonageSmsAdapter(HttpSmsAdapter[DeliveryReportOptions]):
    default_base_url = "https://rest.nexmo.com"

    def form(self, message: SmsMessage, api_key: str, api_secret: str, client_ref: str | None) -> dict[str, str]:
        to = e164(message.to)
        from_ = sender(message, self.config.from_number, slug=self.slug)
        if not from_:
            raise ConfigurationError(f"{self.slug}: no sender: set vendors.{self.slug}.from_number or pass --from")
        fields = {
            "api_key": api_key,
            "api_secret": api_secret,
            "from": from_.lstrip("+"),
            "to": to.lstrip("+"),
            "text": message.body,
        }
        if not is_gsm7(message.body):
            fields["type"] = "unicode"
        if client_ref:
            fields["client-ref"] = client_ref[:100]
        callback = status_callback(message, self.config.status_callback)
        if callback:
            fields.update({"callback": callback, "status-report-req": "1"})
        return fields

    def precheck(self, message: SmsMessage) -> None:
        super().precheck(message)
        self.form(message, "", "", None)  # a missing sender is found before credentials or the network

    def build_send(self, message: SmsMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        """The credentials travel in the form (Vonage has no header auth for SMS); the log keeps the rest."""
        key, secret = basic_auth(creds)
        form = self.form(message, key, secret, correlation_id)
        logged = {k: v for k, v in form.items() if k not in ("api_key", "api_secret")}
        return VendorRequest("POST", "/sms/json", data=form, headers={"Accept": "application/json"}, log=logged)

    def parse_send(self, response: httpx.Response, message: SmsMessage) -> SendResult:
        parts = self._parse(response)
        message_id = parts[0].get("message-id") if parts else None
        return SendResult(
            self.slug,
            message_id,
            (RecipientResult(e164(message.to), DeliveryStatus.ACCEPTED, message_id),),
            raw={"messages": parts},
        )

    def _parse(self, response: httpx.Response) -> list[Mapping[str, Any]]:
        """Raise for the first non-zero part status (inside the pipeline, so the log row is a failure)."""
        try:
            body = response.json()
        except ValueError:
            raise VendorUnavailableError(
                f"{self.slug}: HTTP {response.status_code} with a body that is not JSON",
                service=self.slug,
                http_status=response.status_code,
            ) from None
        parts = body.get("messages") if isinstance(body, Mapping) else None
        if not isinstance(parts, list) or not parts:
            raise VendorUnavailableError(
                f"{self.slug}: answer without messages",
                service=self.slug,
                http_status=response.status_code,
                response_data=body,
            )
        for part in parts:
            status = str(part.get("status", ""))
            if status != "0":
                raise self._status_error(
                    status, str(part.get("error-text") or "no error-text"), response.status_code, body
                )
        return parts

    def _status_error(self, status: str, text: str, http_status: int, body: Any) -> ConnectorError:
        detail = f"{self.slug}: status {status}: {text}"
        kwargs: dict[str, Any] = {"service": self.slug, "http_status": http_status, "response_data": body}
        if status in RATE_STATUSES:
            return RateLimitedError(detail, **kwargs)  # throttled: not processed, safe to retry later
        if status in AUTH_STATUSES:
            return AuthenticationError(
                detail, hint=f"check the credentials: connectorctl creds show {self.slug}", **kwargs
            )
        if status in VALIDATION_STATUSES:
            return ValidationError(detail, **kwargs)
        if status in RECIPIENT_STATUSES:
            return RecipientRefusedError(
                detail, recipient_status=RECIPIENT_STATUSES[status], reason=f"vonage {status}: {text}", **kwargs
            )
        if status == "5":
            return VendorUnavailableError(detail, **kwargs)  # the platform's internal error: like a 500
        return VendorRejectedError(detail, **kwargs)  # 8 barred account, 9 no credit, 11 HTTP not enabled, ...

    def error_message(self, response: httpx.Response, body: Any) -> str:
        if isinstance(body, Mapping) and isinstance(body.get("error-code-label"), str):
            return body["error-code-label"]
        if isinstance(body, Mapping) and isinstance(body.get("title"), str):  # RFC 7807 answers of newer Vonage APIs
            return f"{body['title']}: {body.get('detail', '')}".rstrip(": ")
        return super().error_message(response, body)

    # -- reads ----------------------------------------------------------------------
    def build_verify(self, creds: Credentials) -> VendorRequest:
        """The balance read: authenticated, read-only, free."""
        return VendorRequest(
            "GET", "/account/get-balance", headers={"Accept": "application/json"}, auth=basic_auth(creds)
        )

    def check_balance(self, tenant_id: str | None = None) -> Mapping[str, Any]:
        body = self.execute(
            "check_balance", self.build_verify, lambda r: r.json(), tenant_id=tenant_id, idempotent=True
        ).value
        return {
            "vendor": self.slug,
            "balance": str(body.get("value")),
            "currency": "EUR",
            "auto_reload": body.get("autoReload"),
        }


VENDOR = Vendor(
    "vonage",
    "Vonage (Nexmo) SMS API and account balance",
    {"sms": VonageSmsAdapter},
    DeliveryReportOptions,
    (
        AuthScheme(
            AuthMethod.BASIC_AUTH, ("username", "password"), help="username: the API key, password: the API secret"
        ),
    ),
    env={"username": "VONAGE_API_KEY", "password": "VONAGE_API_SECRET"},
    sender_env={"from_number": "VONAGE_FROM_NUMBER"},
)
