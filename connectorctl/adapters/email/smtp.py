"""SMTP over smtplib: plain, STARTTLS or implicit TLS, optional AUTH.

Settings: ``host`` (default localhost), ``port`` and ``security`` (``plain``,
``starttls`` or ``tls``); either one implies the other's usual value (465 <->
tls, 587 <-> starttls, 25 <-> plain) and with neither we use STARTTLS on 587.
TLS always verifies the server certificate against the system trust store
(``SSL_CERT_FILE`` adds a private CA).  Credentials are optional basic_auth
(``username``, ``password``); without them no AUTH is attempted.

SMTP replies map onto our errors here, once: 535 and friends -> authentication;
a 5xx refusal of a recipient -> that recipient rejected (the others still get
the message); 4xx replies and broken connections -> transient.  When a failure
proves the server took nothing (before DATA completed), it says so, which is
what lets the pipeline retry it safely.
"""

from __future__ import annotations

import email.policy
import email.utils
import smtplib
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from connectorctl.adapters.base import ALL_EMAIL_FEATURES, EmailAdapter
from connectorctl.adapters.declaration import BASIC_AUTH, Vendor
from connectorctl.adapters.email.common import attachment_summary
from connectorctl.adapters.http import secret_values
from connectorctl.adapters.mime import build_mime
from connectorctl.domain.messages import DeliveryStatus, EmailMessage, RecipientResult, SendResult
from connectorctl.domain.values import AuthMethod, Credentials
from connectorctl.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectorError,
    ValidationError,
    VendorRejectedError,
    VendorTimeoutError,
)
from connectorctl.resilience.pipeline import Call, VendorResponse, new_id
from connectorctl.settings import VendorSettings

DEFAULT_PORTS = {"tls": 465, "starttls": 587, "plain": 25}
SECURITY_FOR_PORT = {465: "tls", 587: "starttls", 25: "plain"}


@dataclass(frozen=True)
class SmtpOptions(VendorSettings):
    host: str | None = None  # SMTP server; null = localhost
    port: int | None = None  # null = the security mode's usual port (465 tls, 587 starttls, 25 plain)
    security: str | None = None  # plain, starttls or tls (implicit); null = what the port implies

    def problems(self) -> Iterator[tuple[str, str]]:
        yield from super().problems()
        if self.port is not None and not 1 <= self.port <= 65535:
            yield "port", "must be between 1 and 65535"


class SmtpEmailAdapter(EmailAdapter[SmtpOptions]):
    capabilities = ALL_EMAIL_FEATURES  # tags and metadata travel as X-Tags / X-Metadata-* headers

    @property
    def security(self) -> str:
        security = (self.config.security or SECURITY_FOR_PORT.get(self.config.port or 587, "starttls")).lower()
        if security not in DEFAULT_PORTS:
            raise ConfigurationError(f"vendors.{self.slug}.security: {security!r} is not one of plain, starttls, tls")
        return security

    @property
    def address(self) -> tuple[str, int]:
        return (self.config.host or "localhost", self.config.port or DEFAULT_PORTS[self.security])

    @property
    def endpoint(self) -> str:
        host, port = self.address
        return f"{'smtps' if self.security == 'tls' else 'smtp'}://{host}:{port}"

    def send(
        self, message: EmailMessage, *, tenant_id: str | None = None, correlation_id: str | None = None
    ) -> SendResult:
        correlation_id = correlation_id or new_id()
        self.require(message)
        from_email, from_name = self.sender(message)
        message_id = email.utils.make_msgid(domain=from_email.rpartition("@")[2] or "localhost")
        data = build_mime(message, from_email, from_name, message_id=message_id).as_bytes(
            policy=email.policy.SMTP
        )  # CRLF line ends
        recipients = list(dict.fromkeys(message.recipients))
        creds = self.credentials(tenant_id)
        logged = {
            "from": from_email,
            "to": list(message.to),
            "cc": list(message.cc),
            "bcc": list(message.bcc),
            "subject": message.subject,
            "message_id": message_id,
            "size": len(data),
            "attachments": attachment_summary(message.attachments),
        }
        call = Call(
            self.slug,
            "send_email",
            self.endpoint,
            "SMTP",
            request_data=logged,
            tenant_id=tenant_id,
            correlation_id=correlation_id,
            secrets=secret_values(creds),
        )
        response = self.run(
            call, lambda: self._session(creds, lambda smtp: _sendmail(smtp, self.slug, from_email, recipients, data))
        )
        refused: Mapping[str, tuple[int, str]] = response.value
        results = tuple(_recipient(address, refused.get(address), message_id) for address in message.recipients)
        return SendResult(self.slug, message_id, results, correlation_id)

    def verify_credentials(self, tenant_id: str | None = None) -> VendorResponse:
        """Connect, secure the channel and log in, then quit: nothing is sent."""
        creds = self.credentials(tenant_id)
        call = Call(
            self.slug,
            "verify_credentials",
            self.endpoint,
            "SMTP",
            idempotent=True,
            tenant_id=tenant_id,
            secrets=secret_values(creds),
        )
        return self.run(call, lambda: self._session(creds, lambda smtp: {"noop": smtp.noop()[0]}))

    def _session(self, creds: Credentials, work: Callable[[smtplib.SMTP], Any]) -> VendorResponse:
        """One connection: connect, TLS, AUTH, ``work``; every smtplib failure mapped once."""
        host, port = self.address
        timeout = self.config.timeout_seconds
        stage = "connect"
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if creds.auth_method is not AuthMethod.NONE:
                    stage = "auth"
                    smtp.login(creds.data.get("username", ""), creds.data.get("password", ""))
                stage = "send"
                value = work(smtp)
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - this is the edge where foreign errors become ours
            raise self._error(exc, stage) from None
        return VendorResponse(value, response_data=value)

    def _error(self, exc: BaseException, stage: str) -> ConnectorError | ConfigurationError:
        where = f"{self.slug} ({self.endpoint})"
        untouched = stage != "send"  # nothing was handed over before the send stage
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return AuthenticationError(
                f"{where}: login refused ({exc.smtp_code})",
                service=self.slug,
                hint=f"check the credentials: connectorctl creds show {self.slug}",
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return ConfigurationError(
                f"{where}: {_text(exc)} (vendors.{self.slug}.security is {self.security})",
                hint=f"check vendors.{self.slug}.security and the credentials",
            )
        if isinstance(exc, smtplib.SMTPResponseException):
            code, text = exc.smtp_code, _text(exc)
            if 400 <= code < 500:
                return ConnectionFailedError(
                    f"{where}: temporary failure {code}: {text}", service=self.slug, vendor_processed=False
                )
            if isinstance(exc, smtplib.SMTPSenderRefused):
                return ValidationError(f"{where}: sender refused {code}: {text}", service=self.slug)
            return VendorRejectedError(f"{where}: refused {code}: {text}", service=self.slug)
        # smtplib turns a read timeout into SMTPServerDisconnected("... timed out")
        timed_out = isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)
        if timed_out or isinstance(exc, (socket.timeout, TimeoutError)):
            if untouched:
                return ConnectionFailedError(
                    f"{where}: timed out during {stage}", service=self.slug, vendor_processed=False
                )
            return VendorTimeoutError(f"{where}: no answer within {self.config.timeout_seconds:g} s", service=self.slug)
        if isinstance(exc, UnicodeError):
            return ValidationError(
                f"{where}: non-ASCII address or header needs a server with SMTPUTF8", service=self.slug
            )
        if isinstance(exc, ssl.SSLError):
            return ConnectionFailedError(
                f"{where}: TLS failed: {exc.reason or type(exc).__name__}", service=self.slug, vendor_processed=False
            )
        if isinstance(exc, (smtplib.SMTPException, OSError)):
            return ConnectionFailedError(
                f"{where}: connection failed during {stage}: {type(exc).__name__}",
                service=self.slug,
                vendor_processed=False if untouched else None,
            )
        raise exc


def _sendmail(
    smtp: smtplib.SMTP, slug: str, sender: str, recipients: list[str], data: bytes
) -> dict[str, tuple[int, str]]:
    """The refused recipients; all refused with 5xx is an answer, not an error (nothing was sent)."""
    try:
        refused = smtp.sendmail(sender, recipients, data)
    except smtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients
        temporary = {a: c for a, (c, _) in refused.items() if 400 <= c < 500}
        if temporary:
            raise ConnectionFailedError(
                f"{slug}: recipients temporarily refused ({', '.join(f'{a} {c}' for a, c in temporary.items())})",
                service=slug,
                vendor_processed=False,
            ) from None
    return {address: (code, _decode(text)) for address, (code, text) in refused.items()}


def _recipient(address: str, refusal: tuple[int, str] | None, message_id: str) -> RecipientResult:
    if refusal is None:
        return RecipientResult(address, DeliveryStatus.ACCEPTED, message_id)
    code, text = refusal
    status = DeliveryStatus.REJECTED if code >= 500 else DeliveryStatus.FAILED
    return RecipientResult(address, status, None, f"{code} {text}")


def _decode(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _text(exc: BaseException) -> str:
    return _decode(getattr(exc, "smtp_error", b"") or str(exc))[:300]


VENDOR = Vendor(
    "smtp",
    "any SMTP server (plain, STARTTLS or implicit TLS, optional AUTH)",
    {"email": SmtpEmailAdapter},
    SmtpOptions,
    (BASIC_AUTH,),
    credentials_optional=True,
    env={"username": "MAIL_USERNAME", "password": "MAIL_PASSWORD"},
)
