"""A test signing identity for PayPal webhooks: an RSA key, its self-signed certificate, and a
local HTTP server that serves the certificate the way PayPal's cert URL does (and counts fetches)."""

from __future__ import annotations

import datetime
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def certificate(key: rsa.RSAPrivateKey, *, valid_days: int = 365, expired: bool = False) -> bytes:
    now = datetime.datetime.now(datetime.timezone.utc)
    start = now - datetime.timedelta(days=2 * valid_days if expired else 1)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.test.invalid")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=valid_days)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


class CertServer:
    """Serves PEM certificates on 127.0.0.1 at ``/v1/notifications/certs/<name>``."""

    def __init__(self) -> None:
        self.certs: dict[str, bytes] = {}
        self.fetches: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                server.fetches[name] = server.fetches.get(name, 0) + 1
                body = server.certs.get(name)
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, name: str, pem: bytes) -> str:
        self.certs[name] = pem
        return f"{self.origin}/v1/notifications/certs/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_key(path: Path) -> rsa.RSAPrivateKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return key
