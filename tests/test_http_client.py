"""Vendor calls on httpx's own stack: egress proxies from the environment, a vendor's own CA, client certificates.

The vendor is the fake SendGrid server (HTTP or HTTPS on 127.0.0.1), the proxy a
real forward proxy started here; certificates come from trustme.
"""

from __future__ import annotations

import select
import socket
import ssl
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import trustme

from email_contract import make_settings
from fake_sendgrid import API_KEY, FakeSendGrid
from connectorctl.config import VendorSettings
from connectorctl.credentials.static import StaticCredentialProvider
from connectorctl.domain.messages import EmailMessage
from connectorctl.errors import ConfigurationError, ConnectionFailedError
from connectorctl.gateway import Connector

MESSAGE = EmailMessage(to=("ann@example.com",), subject="Invoice", text="Thank you.")


class ForwardProxy:
    """An HTTP forward proxy: absolute-URI requests are relayed, CONNECT opens a tunnel; ``seen`` lists each request line."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_CONNECT(self) -> None:  # noqa: N802 - http.server naming
                proxy.seen.append(f"CONNECT {self.path}")
                host, _, port = self.path.rpartition(":")
                upstream = socket.create_connection((host, int(port)), timeout=5)
                self.send_response(200, "Connection established")
                self.end_headers()
                self.close_connection = True
                _pipe(self.connection, upstream)

            def relay(self) -> None:
                proxy.seen.append(f"{self.command} {self.path}")
                url = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
                with httpx.Client(trust_env=False) as client:
                    answer = client.request(self.command, self.path, headers=headers, content=body)
                assert url.hostname == "127.0.0.1"
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            for ready in select.select([a, b], [], [], 5)[0]:
                data = ready.recv(65536)
                if not data:
                    return
                (b if ready is a else a).sendall(data)
    except OSError:
        return
    finally:
        b.close()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    p = ForwardProxy()
    yield p
    p.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _https_sendgrid(ca: trustme.CA, *, require_client_cert: bool = False) -> FakeSendGrid:
    fake = FakeSendGrid()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    fake.tls = context
    return fake


def _send(home: Path, vendor: VendorSettings) -> Any:
    """One send from a fresh installation (a refused send opens the circuit of the one before)."""
    home = Path(tempfile.mkdtemp(dir=home.parent))
    settings = make_settings(home, "sendgrid", vendor)
    with Connector(settings, credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as conn:
        return conn.email().send(MESSAGE)


def _vendor(url: str, **tls: Any) -> VendorSettings:
    return VendorSettings(base_url=url, timeout_seconds=5, connect_timeout_seconds=5, from_email="shop@example.com", **tls)


def test_vendor_requests_go_through_the_proxy_from_the_environment(home: Path, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with FakeSendGrid() as fake:
        result = _send(home, _vendor(fake.url))
    assert result.message_id and len(fake.requests) == 1
    assert proxy.seen == [f"POST {fake.url}/v3/mail/send"]


def test_no_proxy_sends_that_vendor_directly(home: Path, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with FakeSendGrid() as fake:
        _send(home, _vendor(fake.url))
    assert len(fake.requests) == 1 and proxy.seen == []


def test_https_vendor_is_reached_through_a_connect_tunnel(home: Path, proxy: ForwardProxy, ca: trustme.CA, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with _https_sendgrid(ca) as fake:
        _send(home, _vendor(fake.url, ca_bundle=str(tmp_path / "ca.pem")))
        port = fake.url.rsplit(":", 1)[1]
    assert proxy.seen == [f"CONNECT 127.0.0.1:{port}"]


def test_a_self_signed_vendor_is_refused_unless_its_ca_is_configured(home: Path, ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with _https_sendgrid(ca) as fake:
        with pytest.raises(ConnectionFailedError, match="CERTIFICATE_VERIFY_FAILED"):
            _send(home, _vendor(fake.url))
        assert fake.requests == []
        assert _send(home, _vendor(fake.url, ca_bundle=str(tmp_path / "ca.pem"))).message_id
    assert len(fake.requests) == 1


def test_ssl_cert_file_trusts_a_ca_for_every_vendor(home: Path, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    with _https_sendgrid(ca) as fake:
        assert _send(home, _vendor(fake.url)).message_id


def test_a_client_certificate_is_presented_when_configured(home: Path, ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    client = ca.issue_cert("erp.example.com")
    client.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    client.private_key_pem.write_to_path(str(tmp_path / "client.key"))
    with _https_sendgrid(ca, require_client_cert=True) as fake:
        with pytest.raises(ConnectionFailedError):
            _send(home, _vendor(fake.url, ca_bundle=str(tmp_path / "ca.pem")))
        mtls = _vendor(fake.url, ca_bundle=str(tmp_path / "ca.pem"), client_cert=str(tmp_path / "client.pem"), client_key=str(tmp_path / "client.key"))
        assert _send(home, mtls).message_id
    assert len(fake.requests) == 1


def test_an_unusable_ca_bundle_is_a_config_error_not_a_vendor_failure(home: Path, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ConfigurationError, match=r"vendors\.sendgrid\.ca_bundle"):
        _send(home, _vendor("https://127.0.0.1:9", ca_bundle=str(tmp_path / "ca.pem")))


def test_adapters_never_keep_or_send_cookies(home: Path) -> None:
    seen: list[str | None] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(202, headers={"Set-Cookie": "session=tenant-a; Path=/", "X-Message-Id": "m1"})

    settings = make_settings(home, "sendgrid", _vendor("https://sendgrid.test"))
    with Connector(settings, credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}}),
                   transports={"sendgrid": httpx.MockTransport(vendor)}) as conn:
        conn.email().send(MESSAGE)
        conn.email().send(MESSAGE)
    assert seen == [None, None]
