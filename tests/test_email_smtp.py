"""SMTP against a real aiosmtpd server: the shared contract, the MIME that arrives,
STARTTLS / implicit TLS with a self-signed certificate, AUTH and SMTP error mapping."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Iterator

import pytest

from email_contract import FULL, PDF, SENDER, EmailContract, make_settings
from fake_smtp import BUSY, PASSWORD, REJECTED, USERNAME, FakeSmtpServer, make_certificate
from connectorctl.adapters.email.smtp import SmtpOptions
from connectorctl.config import VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import DeliveryStatus, EmailMessage
from connectorctl.errors import ConfigurationError, ConnectionFailedError, ValidationError
from connectorctl.gateway import Connector
from connectorctl.resilience.clock import FakeClock

CREDS = {"username": USERNAME, "password": PASSWORD}


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trust(cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Trust the test CA the way an operator would: SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    return cert[0]


def smtp_connector(home: Path, server: FakeSmtpServer, security: str, creds: dict[str, str] | None = CREDS) -> Connector:
    vendor = SmtpOptions(host="127.0.0.1", port=server.port, security=security, timeout_seconds=1.0, from_email=SENDER)
    provider = StaticCredentialProvider({"smtp": creds} if creds else {})
    return Connector(make_settings(home, "smtp", vendor), clock=FakeClock(), credentials=provider)


def observed_mime(fake: FakeSmtpServer) -> dict[str, Any]:
    received = fake.messages[-1]
    mime = received.mime
    body_text = mime.get_body(("plain",))
    body_html = mime.get_body(("html",))
    listed = [a.strip() for h in ("To", "Cc") for a in (mime.get(h) or "").split(",") if a.strip()]
    return {
        "to": [a.strip() for a in mime["To"].split(",")], "cc": [a.strip() for a in (mime.get("Cc") or "").split(",") if a.strip()],
        "bcc": [a for a in received.rcpt_tos if a not in listed], "from": mime["From"].addresses[0].addr_spec,
        "subject": mime["Subject"], "text": body_text.get_content().rstrip("\r\n") if body_text else None,
        "html": body_html.get_content().rstrip("\r\n") if body_html else None, "reply_to": mime.get("Reply-To"),
        "headers": {k: str(v) for k, v in mime.items()}, "tags": [t.strip() for t in (mime.get("X-Tags") or "").split(",") if t.strip()],
        "metadata": {k[len("X-Metadata-"):]: str(v) for k, v in mime.items() if k.startswith("X-Metadata-")},
        "attachments": [(p.get_filename(), p.get_content(), p.get_content_type()) for p in mime.iter_attachments()],
    }


class TestSmtpContract(EmailContract):
    slug = "smtp"
    secret = PASSWORD

    @pytest.fixture
    def fake(self, cert: tuple[Path, Path], trust: Path) -> Iterator[FakeSmtpServer]:
        with FakeSmtpServer("starttls", cert) as server:
            yield server

    def vendor_settings(self, fake: FakeSmtpServer) -> VendorSettings:
        return SmtpOptions(host="127.0.0.1", port=fake.port, security="starttls", timeout_seconds=1.0, from_email=SENDER)

    def credentials(self) -> dict[str, str]:
        return CREDS

    def observed(self, fake: FakeSmtpServer) -> dict[str, Any]:
        return observed_mime(fake)

    def sends_seen(self, fake: FakeSmtpServer) -> int:
        return fake.mail_commands

    def auth_attempts(self, fake: FakeSmtpServer) -> int:
        return fake.auth_attempts

    def delivered(self, fake: FakeSmtpServer) -> int:
        return len(fake.messages)

    def test_the_received_mime_is_a_proper_email(self, adapter: Any, fake: FakeSmtpServer) -> None:
        result = adapter.send(FULL)
        received = fake.messages[-1]
        mime = received.mime
        assert mime.get_content_type() == "multipart/mixed"
        alternative = next(mime.iter_parts())
        assert alternative.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
        assert mime["Message-ID"] == result.message_id
        assert mime["Bcc"] is None and "audit@example.com" in received.rcpt_tos  # Bcc only in the envelope
        assert received.mail_from == "billing@example.com"
        assert mime["X-Order-Id"] == "42" and mime["Reply-To"] == "help@example.com"
        attachment = next(mime.iter_attachments())
        assert (attachment.get_filename(), attachment.get_content()) == ("invoice.pdf", PDF.content)

    def test_refusals_are_per_recipient(self, adapter: Any, fake: FakeSmtpServer) -> None:
        result = adapter.send(EmailMessage(to=("ann@example.com", REJECTED, BUSY), subject="Hi", text="x"))
        statuses = {r.recipient: r.status for r in result.recipients}
        assert statuses == {"ann@example.com": DeliveryStatus.ACCEPTED, REJECTED: DeliveryStatus.REJECTED, BUSY: DeliveryStatus.FAILED}
        assert result.failed[0].reason.startswith("550") and result.failed[1].reason.startswith("450")
        assert [m.rcpt_tos for m in fake.messages] == [["ann@example.com"]]

    def test_a_temporary_refusal_of_everyone_is_retried_then_transient(self, adapter: Any, fake: FakeSmtpServer) -> None:
        with pytest.raises(ConnectionFailedError) as info:
            adapter.send(EmailMessage(to=(BUSY,), subject="Hi", text="x"))
        assert info.value.vendor_processed is False  # nothing was taken: safe to retry and fail over
        assert fake.mail_commands == 3 and fake.messages == []

    def test_a_refused_sender_is_a_validation_error(self, adapter: Any, fake: FakeSmtpServer) -> None:
        fake.fail_next("invalid")
        with pytest.raises(ValidationError, match="553"):
            adapter.send(EmailMessage(to=("ann@example.com",), subject="Hi", text="x"))
        assert fake.mail_commands == 1


def test_implicit_tls_with_auth(home: Path, cert: tuple[Path, Path], trust: Path) -> None:
    with FakeSmtpServer("tls", cert) as server, smtp_connector(home, server, "tls") as c:
        result = c.adapter("smtp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x", html="<p>x</p>"))
        assert result.ok and server.auth_attempts == 1 and len(server.messages) == 1


def test_plain_without_credentials_does_not_authenticate(home: Path) -> None:
    with FakeSmtpServer("plain", auth=False) as server, smtp_connector(home, server, "plain", creds=None) as c:
        assert c.adapter("smtp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x")).ok
        assert server.auth_attempts == 0 and server.messages[0].mime["Subject"] == "Hi"


def test_an_untrusted_certificate_is_refused(home: Path, cert: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_certificate(tmp_path)  # trust a different certificate than the server's
    monkeypatch.setenv("SSL_CERT_FILE", str(other[0]))
    with FakeSmtpServer("starttls", cert) as server, smtp_connector(home, server, "starttls") as c:
        with pytest.raises(ConnectionFailedError, match="TLS"):
            c.adapter("smtp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
        assert server.auth_attempts == 0 and server.messages == []


def test_starttls_against_a_server_without_it_is_a_configuration_error(home: Path) -> None:
    with FakeSmtpServer("plain", auth=False) as server, smtp_connector(home, server, "starttls", creds=None) as c:
        with pytest.raises(ConfigurationError, match="security"):
            c.adapter("smtp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))


def test_a_closed_port_is_a_connection_failure_nothing_sent(home: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused
        vendor = SmtpOptions(host="127.0.0.1", port=port, security="plain", timeout_seconds=1.0, from_email=SENDER)
        with Connector(make_settings(home, "smtp", vendor), clock=FakeClock(), credentials=StaticCredentialProvider({})) as c:
            with pytest.raises(ConnectionFailedError) as info:
                c.adapter("smtp", "email").send(EmailMessage(to=("a@example.com",), subject="Hi", text="x"))
    assert info.value.vendor_processed is False


@pytest.mark.parametrize(("security", "port", "expected"), [
    (None, None, ("starttls", 587)), ("tls", None, ("tls", 465)), (None, 465, ("tls", 465)),
    ("plain", None, ("plain", 25)), (None, 2525, ("starttls", 2525)),
])
def test_security_and_port_imply_each_other(security: str | None, port: int | None, expected: tuple[str, int], home: Path) -> None:
    with Connector(make_settings(home, "smtp", SmtpOptions(security=security, port=port)), credentials=StaticCredentialProvider({})) as c:
        adapter = c.adapter("smtp", "email")
        assert (adapter.security, adapter.address[1]) == expected
