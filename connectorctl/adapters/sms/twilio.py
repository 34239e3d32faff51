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

from dataclasses import dataclass
from typing import Any, Iterator, Mapping
from urllib.parse import quote

import httpx

from connectorctl.adapters.base import SentMatch
from connectorctl.adapters.declaration import AuthScheme, Vendor
from connectorctl.adapters.http import VendorRequest
from connectorctl.adapters.sms.common import (
    DeliveryReportOptions,
    HttpSmsAdapter,
    RecipientRefusedError,
    basic_auth,
    e164,
    sender,
    status_callback,
)
from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import ConfigurationError, ConnectorError, ValidationError
from connectorctl.settings import url_problems
from connectorctl.validation import describe_phone

API_VERSION = "2010-04-01"
CLOCK_SKEW_SECONDS = 60  # Twilio's date_created against our clock, when matching an earlier send
# 400 error codes that are about the one recipient, not about our request.
RECIPIENT_CODES: Mapping[int, DeliveryStatus] = {
    21211: DeliveryStatus.INVALID,  # invalid 'To' phone number
    21614: DeliveryStatus.INVALID,  # 'To' is not a valid mobile number
    21408: DeliveryStatus.REJECTED,  # permission to send to this region not enabled
    21608: DeliveryStatus.REJECTED,  # trial account: number not verified
    21610: DeliveryStatus.REJECTED,  # recipient replied STOP (unsubscribed)
    21612: DeliveryStatus.REJECTED,  # this To/From pair cannot be reached
}
_STATUS = {
    "accepted": DeliveryStatus.ACCEPTED,
    "queued": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.SCHEDULED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.ACCEPTED,
    "delivered": DeliveryStatus.ACCEPTED,
    "read": DeliveryStatus.ACCEPTED,
    "partially_delivered": DeliveryStatus.ACCEPTED,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.REJECTED,
}


def recipient_status(body: Mapping[str, Any]) -> tuple[DeliveryStatus, str | None]:
    """A status we do not know is reported as what it is (uncertain, naming it), never as accepted."""
    status = body.get("status")
    if status in _STATUS:
        return _STATUS[status], body.get("error_message")
    return DeliveryStatus.UNCERTAIN, f"twilio reported message status {status!r}, which connectorctl does not know"


@dataclass(frozen=True)
class TwilioOptions(DeliveryReportOptions):
    messaging_service_sid: str | None = None  # MG...: send through a Messaging Service when no from_number is given
    lookup_base_url: str | None = None  # Lookup v2 root (default https://lookups.twilio.com)

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        yield from url_problems(self, "lookup_base_url")


class TwilioSmsAdapter(HttpSmsAdapter[TwilioOptions]):
    default_base_url = "https://api.twilio.com"
    default_lookup_base_url = "https://lookups.twilio.com"

    def _account_path(self, creds: Credentials, suffix: str) -> str:
        sid, _ = basic_auth(creds)
        return f"/{API_VERSION}/Accounts/{quote(sid, safe='')}{suffix}"

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
                f"{self.slug}: no sender: set vendors.{self.slug}.from_number or messaging_service_sid, or pass --from"
            )
        fields["Body"] = message.body
        callback = status_callback(message, self.config.status_callback)
        if callback:
            fields["StatusCallback"] = callback
        return fields

    # -- translation ----------------------------------------------------------------
    def precheck(self, message: SmsMessage) -> None:
        super().precheck(message)
        self.form(message)  # a missing sender is found before credentials or the network are touched

    def build_send(self, message: SmsMessage, creds: Credentials, correlation_id: str | None) -> VendorRequest:
        return VendorRequest(
            "POST",
            self._account_path(creds, "/Messages.json"),
            data=self.form(message),
            headers={"Accept": "application/json"},
            auth=basic_auth(creds),
        )

    def parse_send(self, response: httpx.Response, message: SmsMessage) -> SendResult:
        body: Mapping[str, Any] = response.json()
        status, reason = recipient_status(body)
        sid = body.get("sid")
        return SendResult(self.slug, sid, (RecipientResult(e164(message.to), status, sid, reason),), raw=dict(body))

    def error_for(self, response: httpx.Response) -> ConnectorError:
        exc = super().error_for(response)
        code = exc.response_data.get("code") if isinstance(exc.response_data, Mapping) else None
        if isinstance(exc, ValidationError) and isinstance(code, int) and code in RECIPIENT_CODES:
            return RecipientRefusedError(
                exc.message,
                recipient_status=RECIPIENT_CODES[code],
                reason=f"twilio {code}: {self.error_message(response, exc.response_data)}",
                service=self.slug,
                http_status=exc.http_status,
                response_data=exc.response_data,
            )
        return exc

    def error_message(self, response: httpx.Response, body: Any) -> str:
        text = super().error_message(response, body)
        if isinstance(body, Mapping) and body.get("code") is not None:
            return f"{text} (code {body['code']}, {body.get('more_info') or 'no more_info'})"
        return text

    # -- reads ----------------------------------------------------------------------
    def build_lookup(self, message: SmsMessage, key: str, since: float, creds: Credentials) -> VendorRequest:
        """The newest messages to the recipient: Twilio keeps no metadata of ours, so a match is same recipient,
        same body, created at or after ``since``."""
        params = {"To": e164(message.to), "PageSize": 50}
        return VendorRequest("GET", self._account_path(creds, "/Messages.json"), params=params, auth=basic_auth(creds))

    def parse_lookup(self, response: httpx.Response, message: SmsMessage, key: str, since: float) -> SentMatch | None:
        import email.utils

        for found in (response.json() or {}).get("messages") or []:
            created = email.utils.parsedate_to_datetime(found["date_created"]) if found.get("date_created") else None
            if (
                found.get("body") == message.body
                and created is not None
                and created.timestamp() >= since - CLOCK_SKEW_SECONDS
            ):
                return SentMatch(found.get("sid"), found.get("status"))
        return None

    def build_verify(self, creds: Credentials) -> VendorRequest:
        """GET the account resource: authenticated, read-only, free."""
        return VendorRequest("GET", self._account_path(creds, ".json"), auth=basic_auth(creds))

    def parse_verify(self, response: httpx.Response) -> Any:
        body = response.json()
        return {"account_sid": body.get("sid"), "status": body.get("status")}

    def check_balance(self, tenant_id: str | None = None) -> Mapping[str, Any]:
        body = self.execute(
            "check_balance",
            lambda c: VendorRequest("GET", self._account_path(c, "/Balance.json"), auth=basic_auth(c)),
            lambda r: r.json(),
            tenant_id=tenant_id,
            idempotent=True,
        ).value
        # Twilio sends the balance as a string ("0.05"); keep it exact rather than a float.
        return {
            "vendor": self.slug,
            "balance": str(body.get("balance")),
            "currency": body.get("currency"),
            "account_sid": body.get("account_sid"),
        }

    def validate_phone_number(self, phone_number: str, tenant_id: str | None = None) -> Mapping[str, Any]:
        """Offline check first (no call for a number that cannot exist), then Lookup v2."""
        offline = describe_phone(phone_number)
        if not offline["valid"]:
            return {**offline, "source": "offline"}
        number = str(offline["phone_number"])
        base = (self.config.lookup_base_url or self.default_lookup_base_url).rstrip("/")
        url = f"{base}/v2/PhoneNumbers/{quote(number, safe='+')}"
        body = self.execute(
            "validate_phone_number",
            lambda c: VendorRequest("GET", url, auth=basic_auth(c), log={"phone_number": number}),
            lambda r: r.json(),
            tenant_id=tenant_id,
            idempotent=True,
        ).value
        return {
            "phone_number": body.get("phone_number") or number,
            "valid": bool(body.get("valid")),
            "country_code": body.get("country_code"),
            "calling_country_code": body.get("calling_country_code"),
            "national_format": body.get("national_format"),
            "errors": list(body.get("validation_errors") or []),
            "source": "twilio_lookup_v2",
        }


VENDOR = Vendor(
    "twilio",
    "Twilio Messages, Lookup v2 and Balance",
    {"sms": TwilioSmsAdapter},
    TwilioOptions,
    (
        AuthScheme(
            AuthMethod.BASIC_AUTH,
            ("username", "password"),
            help="username: the Account SID (AC...), password: the Auth Token",
        ),
    ),
    env={"username": "TWILIO_ACCOUNT_SID", "password": "TWILIO_AUTH_TOKEN"},
    sender_env={"from_number": "TWILIO_FROM_NUMBER"},
)
