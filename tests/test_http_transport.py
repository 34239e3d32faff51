"""HttpClientTransport (stdlib http.client under httpx) against a real local server."""

from __future__ import annotations

import gzip
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import httpx
import pytest

from connectorctl.adapters.transport import HttpClientTransport


class _Server:
    def __init__(self) -> None:
        self.peers: list[Any] = []
        self.bodies: list[bytes] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server.peers.append(self.client_address)
                server.bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if self.path == "/hang":
                    server.release.wait(10)
                    return
                if self.path == "/gzip":
                    data = gzip.compress(b'{"ok": true}')
                    self.send_response(200)
                    self.send_header("Content-Encoding", "gzip")
                elif self.path == "/chunked":
                    self.send_response(201)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                    return
                else:
                    data = b'{"ok": true}'
                    self.send_response(202)
                if self.path == "/close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                if self.path == "/silent-close":
                    self.close_connection = True  # closes after answering, without telling the client
                self.send_header("X-Message-Id", "m-1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.stop()


def client() -> httpx.Client:
    return httpx.Client(transport=HttpClientTransport(), timeout=httpx.Timeout(0.5, connect=0.5))


def test_keeps_one_connection_alive_and_sends_body_and_headers(server: _Server) -> None:
    with client() as c:
        for n in range(5):
            r = c.post(f"{server.url}/x", json={"n": n}, headers={"Authorization": "Bearer k"})
            assert r.status_code == 202 and r.json() == {"ok": True} and r.headers["x-message-id"] == "m-1"
    assert len(set(server.peers)) == 1 and server.bodies[-1] == b'{"n":4}'


def test_decodes_gzip_and_chunked_and_reconnects_after_connection_close(server: _Server) -> None:
    with client() as c:
        assert c.post(f"{server.url}/gzip", content=b"").json() == {"ok": True}
        assert c.post(f"{server.url}/chunked", content=b"x").content == b"abcde"
        assert c.post(f"{server.url}/close", content=b"x").status_code == 202
        assert c.post(f"{server.url}/x", content=b"y").status_code == 202
    assert len(set(server.peers)) == 2  # a new connection after the server said close


def test_idle_connection_closed_by_the_peer_is_replaced_not_an_error(server: _Server) -> None:
    import select

    transport = HttpClientTransport()
    with httpx.Client(transport=transport, timeout=1) as c:
        assert c.post(f"{server.url}/silent-close", content=b"1").status_code == 202
        (conn,) = transport._pool().values()
        assert select.select([conn.sock], [], [], 5)[0]  # the server's FIN has arrived
        assert c.post(f"{server.url}/x", content=b"2").status_code == 202
    assert server.bodies == [b"1", b"2"] and len(set(server.peers)) == 2


def test_timeouts_and_refused_connections_are_httpx_errors(server: _Server) -> None:
    with client() as c:
        with pytest.raises(httpx.ReadTimeout):
            c.post(f"{server.url}/hang", content=b"x")
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        with pytest.raises(httpx.ConnectError):
            c.post(f"http://127.0.0.1:{port}/x", content=b"x")


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_verifies_the_certificate(server: _Server, tmp_path: Any) -> None:
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server.httpd.socket = server_ctx.wrap_socket(server.httpd.socket, server_side=True)
    url = server.url.replace("http://", "https://")
    trusting = ssl.create_default_context(cafile=cert)
    with httpx.Client(transport=HttpClientTransport(trusting), timeout=2) as c:
        assert c.post(f"{url}/x", content=b"tls").status_code == 202
        assert c.post(f"{url}/x", content=b"again").status_code == 202
    assert server.bodies == [b"tls", b"again"] and len(set(server.peers)) == 1
    with httpx.Client(transport=HttpClientTransport(), timeout=2) as c:  # default trust store: self-signed is refused
        with pytest.raises(httpx.ConnectError):
            c.post(f"{url}/x", content=b"x")


def test_adapters_never_keep_or_send_cookies(home: Any) -> None:
    import yaml

    from connectorctl.adapters.transport import NoCookies
    from connectorctl.credentials.static import StaticCredentialProvider
    from connectorctl.gateway import Connector

    seen: list[str | None] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("cookie"))
        return httpx.Response(200, headers={"Set-Cookie": "session=tenant-a; Path=/"}, json={"sid": "AC1"})

    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump({"vendors": {"twilio": {"base_url": "https://twilio.test"}}}))
    creds = StaticCredentialProvider({"twilio": {"username": "AC1", "password": "tok-123456"}})
    with Connector(config_path=home / "config.yaml", credentials=creds, transports={"twilio": httpx.MockTransport(vendor)}) as conn:
        adapter = conn.adapter("twilio", "sms")
        adapter.verify_credentials()
        adapter.verify_credentials()
        assert isinstance(adapter.client().cookies.jar, NoCookies)
    assert seen == [None, None]
