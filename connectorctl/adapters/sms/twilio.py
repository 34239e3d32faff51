"""Twilio: Messages (2010-04-01 API), Lookup v2 and the account Balance.

Contract (from Twilio's OpenAPI description, twilio-oai): ``POST /2010-04-01/Accounts/
{AccountSid}/Messages.json``, HTTP Basic ``AccountSid:AuthToken``, form-urlencoded
PascalCase fields (``To``, ``From`` or ``MessagingServiceSid``, ``Body``), success
is **201** with the Message JSON.  Errors carry ``{code, message, more_info,
status}``; 20429 (HTTP 429) means the request was not processed and is safe
to retry.  Lookup v2 lives on another host (``lookup_base_url``) and answers
**200 even for an invalid number** (``valid: false``).  The balance is a string.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

import httpx

from connectorctl.adapters.base import SmsAdapter
from connectorctl.adapters.http import HttpAdapterMixin
from connectorctl.adapters.sms.common import (
    RecipientRefusedError, basic_auth, basic_header, e164, refused_result, secrets_of, send_built, sender,
)
from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError, ConnectorError, InvalidInputError, ValidationError
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id
from connectorctl.validation import describe_phone

API_VERSION = "2010-04-01"
# 400 error codes that are about the one recipient, not about our request.
RECIPIENT_CODES: Mapping[int, DeliveryStatus] = {
    21211: DeliveryStatus.INVALID,   # invalid 'To' phone number
    21614: DeliveryStatus.INVALID,   # 'To' is not a valid mobile number
    21408: DeliveryStatus.REJECTED,  # permission to send to this region not enabled
    21608: DeliveryStatus.REJECTED,  # trial account: number not verified
    21610: DeliveryStatus.REJECTED,  # recipient replied STOP (unsubscribed)
    21612: DeliveryStatus.REJECTED,  # this To/From pair cannot be reached
}
_STATUS = {
    "accepted": DeliveryStatus.ACCEPTED, "queued": DeliveryStatus.QUEUED, "scheduled": DeliveryStatus.SCHEDULED,
    "sending": DeliveryStatus.QUEUED, "sent": DeliveryStatus.ACCEPTED, "delivered": DeliveryStatus.ACCEPTED,
    "failed": DeliveryStatus.FAILED, "undelivered": DeliveryStatus.FAILED, "canceled": DeliveryStatus.REJECTED,
}


class TwilioSmsAdapter(HttpAdapterMixin, SmsAdapter):
    default_base_url = "https://api.twilio.com"
    default_lookup_base_url = "https://lookups.twilio.com"

    # -- request building (also used by --dry-run) -------------------------------
    def _creds(self, tenant_id: str | None) -> Credentials:
        return self.connector.credentials.get(self.slug, tenant_id)

    def _account_url(self, sid: str, suffix: str) -> str:
        return f"{self.base_url}/{API_VERSION}/Accounts/{quote(sid, safe='')}{suffix}"

    def form(self, message: SmsMessage) -> dict[str, str]:
        fields = {"To": e164(message.to)}
        service_sid = self.config.messaging_service_sid
        from_ = sender(message, self.config.from_number, slug=self.slug)
        if from_ and (message.from_number or not service_sid):
            fields["From"] = from_
        elif service_sid:
            fields["MessagingServiceSid"] = service_sid
        else:
            raise ConfigurationError(
                f"{self.slug}: no sender: set vendors.{self.slug}.from_number or messaging_service_sid, or pass --from")
        if not message.body:
            raise InvalidInputError("an SMS needs a body")
        fields["Body"] = message.body
        return fields

    def build_request(self, message: SmsMessage, credentials: Credentials | None) -> httpx.Request:
        sid, token = basic_auth(credentials)
        return httpx.Request("POST", self._account_url(sid, "/Messages.json"), data=self.form(message),
                             headers={"Accept": "application/json", "Authorization": basic_header(sid, token)})

    # -- operations ---------------------------------------------------------------
    def send(self, message: SmsMessage, *, tenant_id: str | None = None, correlation_id: str | None = None) -> SendResult:
        correlation_id = correlation_id or new_id()
        form = self.form(message)  # validates before credentials or the network are touched
        creds = self._creds(tenant_id)
        request = self.build_request(message, creds)
        call = Call(self.slug, "send_sms", str(request.url), "POST", request_data=form, idempotency_key=message.idempotency_key,
                    tenant_id=tenant_id, correlation_id=correlation_id, secrets=secrets_of(creds))
        try:
            response = self.http(call, lambda c: send_built(c, request), self._parse_message)
        except RecipientRefusedError as exc:
            return refused_result(self.slug, form["To"], exc, correlation_id)
        body: Mapping[str, Any] = response.value
        status = _STATUS.get(str(body.get("status")), DeliveryStatus.ACCEPTED)
        sid_ = body.get("sid")
        return SendResult(self.slug, sid_, (RecipientResult(form["To"], status, sid_, body.get("error_message")),), correlation_id, raw=dict(body))

    def _parse_message(self, response: httpx.Response) -> Any:
        return response.json()

    def error_for(self, response: httpx.Response) -> ConnectorError:
        exc = super().error_for(response)
        code = exc.response_data.get("code") if isinstance(exc.response_data, Mapping) else None
        if isinstance(exc, ValidationError) and code in RECIPIENT_CODES:
            return RecipientRefusedError(exc.message, recipient_status=RECIPIENT_CODES[code], reason=f"twilio {code}: {self.error_message(response, exc.response_data)}",
                                         service=self.slug, http_status=exc.http_status, response_data=exc.response_data)
        return exc

    def error_message(self, response: httpx.Response, body: Any) -> str:
        text = super().error_message(response, body)
        if isinstance(body, Mapping) and body.get("code") is not None:
            return f"{text} (code {body['code']}, {body.get('more_info') or 'no more_info'})"
        return text

    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        """GET the account resource: authenticated, read-only, free."""
        creds = self._creds(tenant_id)
        sid, token = basic_auth(creds)
        url = self._account_url(sid, ".json")
        call = Call(self.slug, "verify_credentials", url, "GET", idempotent=True, tenant_id=tenant_id, secrets=secrets_of(creds))
        return self.http(call, lambda c: c.get(url, auth=(sid, token)), lambda r: {"account_sid": r.json().get("sid"), "status": r.json().get("status")})

    def check_balance(self, tenant_id: str | None = None) -> Mapping[str, Any]:
        creds = self._creds(tenant_id)
        sid, token = basic_auth(creds)
        url = self._account_url(sid, "/Balance.json")
        call = Call(self.slug, "check_balance", url, "GET", idempotent=True, tenant_id=tenant_id, secrets=secrets_of(creds))
        body = self.http(call, lambda c: c.get(url, auth=(sid, token)), lambda r: r.json()).value
        # Twilio sends the balance as a string ("0.05"); keep it exact rather than a float.
        return {"vendor": self.slug, "balance": str(body.get("balance")), "currency": body.get("currency"), "account_sid": body.get("account_sid")}

    def validate_phone_number(self, phone_number: str, tenant_id: str | None = None) -> Mapping[str, Any]:
        """Offline check first (no call for a number that cannot exist), then Lookup v2."""
        offline = describe_phone(phone_number)
        if not offline["valid"]:
            return {**offline, "source": "offline"}
        number = str(offline["phone_number"])
        creds = self._creds(tenant_id)
        sid, token = basic_auth(creds)
        base = (self.config.lookup_base_url or self.default_lookup_base_url).rstrip("/")
        url = f"{base}/v2/PhoneNumbers/{quote(number, safe='+')}"
        call = Call(self.slug, "validate_phone_number", url, "GET", request_data={"phone_number": number}, idempotent=True,
                    tenant_id=tenant_id, secrets=secrets_of(creds))
        body = self.http(call, lambda c: c.get(url, auth=(sid, token)), lambda r: r.json()).value
        return {
            "phone_number": body.get("phone_number") or number,
            "valid": bool(body.get("valid")),
            "country_code": body.get("country_code"),
            "calling_country_code": body.get("calling_country_code"),
            "national_format": body.get("national_format"),
            "errors": list(body.get("validation_errors") or []),
            "source": "twilio_lookup_v2",
        }
