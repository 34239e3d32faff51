"""Helpers shared by the HTTP SMS adapters (E.164, sender, per-recipient results).

A recipient-specific refusal (unknown number, opted out, barred) is not an
error of the call: it becomes a :class:`SendResult` whose one recipient is
``invalid`` or ``rejected``, so callers see a truthful ``ok=False`` and the
gateway never fails over (another vendor would refuse the same number).
"""

from __future__ import annotations

from typing import Any

from connectorctl.domain.messages import DeliveryStatus, RecipientResult, SendResult, SmsMessage
from connectorctl.domain.values import Credentials
from connectorctl.errors import ConfigurationError, VendorRejectedError
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
        raise ConfigurationError(f"{slug}: sender {value!r} is neither an E.164 number nor an alphanumeric sender ID (1-11 characters)")
    return value


class RecipientRefusedError(VendorRejectedError):
    """The vendor refused this one recipient; turned into a result, never failed over."""

    def __init__(self, message: str, *, recipient_status: DeliveryStatus, reason: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.recipient_status = recipient_status
        self.reason = reason


def refused_result(slug: str, to: str, exc: RecipientRefusedError, correlation_id: str | None) -> SendResult:
    return SendResult(slug, None, (RecipientResult(to, exc.recipient_status, None, exc.reason),), correlation_id,
                      raw={"error": exc.to_dict()})


def basic_auth(creds: Credentials | None) -> tuple[str, str]:
    """(username, password) of a basic_auth credential, placeholders for a dry-run preview."""
    if creds is None:
        return ("<username>", "<password>")
    try:
        return (creds.data["username"], creds.data["password"])
    except KeyError as exc:
        raise ConfigurationError(
            f"{creds.service_name}: credential field {exc.args[0]!r} missing (basic_auth needs username and password)",
            hint=f"connectorctl creds set {creds.service_name} --auth-method basic_auth",
        ) from None


def secrets_of(creds: Credentials | None) -> tuple[str, ...]:
    return tuple(v for v in (creds.data.values() if creds else ()) if v)


def basic_header(username: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def send_built(client: Any, request: Any) -> Any:
    """Send a request built by ``build_request`` with the client's timeouts and headers.

    Sending exactly what ``--dry-run`` previews keeps the two from drifting apart.
    """
    request.extensions["timeout"] = client.timeout.as_dict()
    for name, value in client.headers.items():
        request.headers.setdefault(name, value)
    return client.send(request)
