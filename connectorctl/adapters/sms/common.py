"""The HTTP SMS base and its helpers (E.164, sender, per-recipient results).

A recipient-specific refusal (unknown number, opted out, barred) is not an
error of the call: it becomes a :class:`SendResult` whose one recipient is
``invalid`` or ``rejected``, so callers see a truthful ``ok=False`` and the
gateway never fails over (another vendor would refuse the same number).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from connectorctl.adapters.base import OptionsT, SmsAdapter
from connectorctl.adapters.http import HttpMessageAdapter
from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError, ConnectorError, InvalidInputError, VendorRejectedError
from connectorctl.settings import VendorSettings, is_http_url, url_problems
from connectorctl.validation import normalize_phone

# The GSM 03.38 basic character set (plus the extension table); anything else needs UCS-2.
_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€\f"
)


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM7 for ch in text)


def e164(number: str) -> str:
    """Validated E.164 (``+14155550123``); raises InvalidInputError before any call."""
    return normalize_phone(number)


def default_from_number(slug: str) -> str | None:
    """``$TWILIO_FROM_NUMBER`` / ``$VONAGE_FROM_NUMBER`` when ``vendors.<slug>.from_number`` is not set."""
    from connectorctl.credentials.vendor_env import sender_default

    found = sender_default(slug, "from_number")
    return found[0] if found else None


def sender(message: SmsMessage, configured: str | None, *, slug: str) -> str | None:
    """The From: a phone number is normalised; an alphanumeric sender ID is kept as is."""
    value = message.from_number or configured or default_from_number(slug)
    if not value:
        return None
    value = value.strip()
    if value.startswith("+") or value.replace(" ", "").isdigit():
        return e164(value if value.startswith("+") else "+" + value.replace(" ", ""))
    if not (1 <= len(value) <= 11 and value.replace(" ", "").isalnum()):
        raise ConfigurationError(
            f"{slug}: sender {value!r} is neither an E.164 number nor an alphanumeric sender ID (1-11 characters)"
        )
    return value


class RecipientRefusedError(VendorRejectedError):
    """The vendor refused this one recipient; turned into a result, never failed over."""

    def __init__(self, message: str, *, recipient_status: DeliveryStatus, reason: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.recipient_status = recipient_status
        self.reason = reason


class HttpSmsAdapter(HttpMessageAdapter[OptionsT, SmsMessage], SmsAdapter[OptionsT]):
    """Base of every HTTP SMS adapter: the number and body are checked before credentials or the network,
    a recipient-specific refusal becomes that recipient's result.  No key is passed to the pipeline: neither
    Twilio nor Vonage receives one, so a key could not make retrying an ambiguous failure safe."""

    def precheck(self, message: SmsMessage) -> None:
        e164(message.to)
        if not message.body:
            raise InvalidInputError("an SMS needs a body")

    def rejection_result(self, exc: ConnectorError, message: SmsMessage) -> SendResult | None:
        if not isinstance(exc, RecipientRefusedError):
            return None
        return SendResult(
            self.slug,
            None,
            (RecipientResult(e164(message.to), exc.recipient_status, None, exc.reason),),
            raw={"error": exc.to_dict()},
        )


@dataclass(frozen=True)
class DeliveryReportOptions(VendorSettings):
    """Options of an SMS vendor that reports delivery to a URL sent along with each message."""

    status_callback: str | None = None  # e.g. https://erp.example.com/api/connector/webhooks/twilio (docs/delivery.md)

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        yield from url_problems(self, "status_callback")


def status_callback(message: SmsMessage, configured: str | None) -> str | None:
    """The delivery-report URL for this send: the message's own, else the vendor's configured one."""
    url = (message.status_callback or configured or "").strip()
    if url and not is_http_url(url):
        raise InvalidInputError(f"status callback {url!r} is not an http(s) URL")
    return url or None


def basic_auth(creds: Credentials) -> tuple[str, str]:
    """(username, password) of a basic_auth credential."""
    try:
        return (creds.data["username"], creds.data["password"])
    except KeyError as exc:
        raise ConfigurationError(
            f"{creds.service_name}: credential field {exc.args[0]!r} missing (basic_auth needs username and password)",
            hint=f"connectorctl creds set {creds.service_name} --auth-method basic_auth",
        ) from None
