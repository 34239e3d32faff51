"""A real S3-compatible server for the storage tests: moto in server mode on 127.0.0.1,
plus a proxy in front of it that answers what moto cannot be told to (503 SlowDown)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

SLOW_DOWN = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
             b"<Message>Please reduce your request rate.</Message></Error>")


EXPIRED = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
           b"<Message>Request has expired</Message></Error>")


def presigned_url_expired(path: str) -> bool:
    """S3's rule for query-string (presigned) SigV4: refused after X-Amz-Date + X-Amz-Expires."""
    from datetime import datetime, timedelta, timezone
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(path).query)
    if "X-Amz-Date" not in query or "X-Amz-Expires" not in query:
        return False
    signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) > signed + timedelta(seconds=int(query["X-Amz-Expires"][0]))


class MotoS3:
    """One ThreadedMotoServer for the whole session; each test gets its own bucket."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.url = f"http://{host}:{port}"

    def client(self, key_id: str = "AKIAMOTOTEST", secret: str = "moto-secret") -> Any:
        """boto3, the vendor's own SDK: a test-only oracle for what the server really holds."""
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key_id, aws_secret_access_key=secret)

    def new_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        return [o["Key"] for o in self.client().list_objects_v2(Bucket=bucket).get("Contents", [])]

    def pending_uploads(self, bucket: str) -> list[str]:
        return [u["Key"] for u in self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]

    def require_auth(self, free_requests: int) -> None:
        """Make moto check SigV4 signatures after ``free_requests`` more requests (float('inf') = never)."""
        httpx.post(f"{self.url}/moto-api/reset-auth", content=str(free_requests).encode()).raise_for_status()

    def stop(self) -> None:
        self.server.stop()


class FaultyProxy:
    """Forwards to ``upstream`` unchanged, except that the next ``fail_next`` requests get 503 SlowDown
    and an expired presigned URL gets S3's 403 "Request has expired" (moto does not check expiry).

    ``one_at_a_time`` hands moto one request at a time: moto's abort of a multipart upload walks the
    upload's parts unguarded and fails with a 500 when a part arrives at that moment, which real S3
    does not do (it may keep such a late part, so its documentation says to abort again)."""

    def __init__(self, upstream: str, *, one_at_a_time: bool = False) -> None:
        self.upstream = upstream
        self._turn = threading.Lock() if one_at_a_time else contextlib.nullcontext()
        self.faults: deque[int] = deque()
        self.stalls: deque[float] = deque()
        self.requests: list[str] = []
        self._client = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.requests.append(f"{self.command} {self.path}")
                if proxy.stalls:
                    time.sleep(proxy.stalls.popleft())
                if proxy.faults:
                    proxy.faults.popleft()
                    self._reply(503, {"Content-Type": "application/xml"}, SLOW_DOWN)
                    return
                if presigned_url_expired(self.path):
                    self._reply(403, {"Content-Type": "application/xml"}, EXPIRED)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "connection")}
                try:
                    with proxy._turn:
                        upstream = proxy._client.request(self.command, self.path, headers=headers, content=body)
                except (RuntimeError, httpx.HTTPError):  # the test already closed the proxy (a stalled reply came too late)
                    return
                keep = {k: v for k, v in upstream.headers.items() if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
                self._reply(upstream.status_code, keep, upstream.content)

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail_next(self, count: int) -> None:
        self.faults.extend([503] * count)

    def stall_next(self, seconds: float) -> None:
        """The next request is answered only after ``seconds`` (a store that went quiet)."""
        self.stalls.append(seconds)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._client.close()
