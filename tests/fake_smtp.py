"""A real SMTP server for tests (aiosmtpd) on an ephemeral 127.0.0.1 port, with a
self-signed certificate made by ``cryptography`` for STARTTLS and implicit TLS."""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import ssl
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME, PASSWORD = "mailer", "smtp-s3cret-0123456789"
REJECTED = "blocked@example.org"
BUSY = "busy@example.org"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 / localhost; returns (cert, key) PEM paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def mime(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]


class _EphemeralController(Controller):
    """aiosmtpd's Controller, bound to port 0 (the OS picks a free port)."""

    def _create_server(self) -> Any:
        async def create() -> Any:
            server = await self.loop.create_server(self._factory_invoker, host=self.hostname, port=0, ssl=self.ssl_context)
            self.port = server.sockets[0].getsockname()[1]
            return server

        return create()


class FakeSmtpServer:
    """Records MAIL/AUTH counts and every accepted message; ``fail_next`` injects SMTP replies."""

    def __init__(self, security: str = "starttls", cert: tuple[Path, Path] | None = None, *, auth: bool = True) -> None:
        self.security, self.cert, self.auth = security, cert, auth
        self.messages: list[Received] = []
        self.mail_commands = 0
        self.auth_attempts = 0
        self._failures: deque[str] = deque()
        self._controller: Controller | None = None

    def fail_next(self, kind: str, **options: Any) -> None:
        assert kind in ("auth", "unavailable", "invalid", "hang"), kind
        self._failures.append(kind)

    def _take(self, *kinds: str) -> str | None:
        if self._failures and self._failures[0] in kinds:
            return self._failures.popleft()
        return None

    @property
    def port(self) -> int:
        assert self._controller is not None
        return self._controller.port

    def __enter__(self) -> "FakeSmtpServer":
        context = None
        if self.cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.cert)
        kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "ready_timeout": 10}
        if self.security == "tls":
            kwargs["ssl_context"] = context
        elif self.security == "starttls":
            kwargs["tls_context"] = context
        if self.auth:
            # aiosmtpd only knows STARTTLS sessions as TLS; an implicit-TLS session is encrypted from the start
            kwargs.update(authenticator=self._authenticate, auth_require_tls=self.security == "starttls")
        self._controller = _EphemeralController(_Handler(self), **kwargs)
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._controller is not None
        self._controller.stop()

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        # smtplib tries each offered mechanism in turn: a failing session fails them all
        if not hasattr(session, "fake_auth_fails"):
            session.fake_auth_fails = bool(self._take("auth"))
            self.auth_attempts += 1
        if session.fake_auth_fails:
            return AuthResult(success=False, handled=False)
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


class _Handler:
    def __init__(self, fake: FakeSmtpServer) -> None:
        self.fake = fake

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        self.fake.mail_commands += 1
        kind = self.fake._take("unavailable", "invalid")
        if kind == "unavailable":
            return "421 4.3.2 Service not available, closing transmission channel"
        if kind == "invalid":
            return "553 5.1.8 Sender address rejected: domain not found"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if address == REJECTED:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address == BUSY:
            return f"450 4.2.1 <{address}>: Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fake._take("hang"):
            await asyncio.sleep(30)
        self.fake.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return f"250 2.0.0 Ok: queued as Q{len(self.fake.messages)}"
