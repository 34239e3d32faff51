"""``connectorctl demo``: a scripted outage against a local HTTP vendor, on a throwaway home.

Everything goes through the real pipeline (httpx edge, retry, SQLite circuit
breaker, integration log): only the vendor is fake, and it runs on
127.0.0.1 with an ephemeral port.  Timeouts and backoff are short, so the
whole story (retries, circuit opening, half-open probe, recovery) takes a
couple of seconds.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

CONFIG = """\
# written by `connectorctl demo`
email_vendor: demo
circuit_breaker:
  failure_threshold: 3
  timeout_seconds: {open_seconds}
  probe_lease_seconds: 5
retry_policy:
  max_attempts: 3
  initial_delay_ms: 50
  multiplier: 2.0
  max_delay_ms: 200
  jitter: false
  total_budget_ms: 5000
vendors:
  demo:
    base_url: {base_url}
    timeout_seconds: 2
    connect_timeout_seconds: 1
"""


class DemoVendorServer:
    """A vendor on 127.0.0.1 whose behaviour the demo switches: ``up``, ``flaky`` or ``down``.

    ``flaky`` answers 503 to the first request of each idempotency key and 200
    to its retry; ``down`` answers 503 to everything.
    """

    def __init__(self) -> None:
        self.mode = "up"
        self.requests = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # otherwise every response costs ~40 ms (Nagle + delayed ACK)
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, body = server.answer(self.headers.get("Idempotency-Key") or "")
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="demo-vendor", daemon=True)

    def answer(self, key: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            first = key not in self._seen
            self._seen.add(key)
            mode = self.mode
        if mode == "down" or (mode == "flaky" and first):
            return 503, {"message": "service temporarily unavailable"}
        return 200, {"id": f"demo-{self.requests}"}

    def __enter__(self) -> "DemoVendorServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def temporary_home(keep: bool) -> Iterator[Path]:
    previous = {k: os.environ.get(k) for k in ("CONNECTORCTL_HOME", "CONNECTORCTL_CONFIG")}
    tmp = tempfile.mkdtemp(prefix="connectorctl-demo-")
    os.environ["CONNECTORCTL_HOME"] = tmp
    os.environ.pop("CONNECTORCTL_CONFIG", None)
    try:
        yield Path(tmp)
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def run_demo(*, keep: bool = False, open_seconds: float = 1.0) -> dict[str, Any]:
    """Run the scripted story, printing as it goes; returns what happened (for tests)."""
    from connectorctl.cli.output import stdout

    out = stdout()
    with temporary_home(keep) as home, DemoVendorServer() as vendor:
        (home / "config.yaml").write_text(
            CONFIG.format(open_seconds=open_seconds, base_url=vendor.url), encoding="utf-8"
        )
        from connectorctl.gateway import Connector

        with Connector() as connector:
            out.rule("[bold]connectorctl demo")
            out.print(
                f"home {home} (temporary), fake vendor at {vendor.url}; retries 3 x 50 ms backoff, circuit opens "
                f"after 3 failures for {open_seconds:g} s"
            )
            story = _story(connector, vendor, out, open_seconds)
            _show_results(connector, out)
        if keep:
            out.print(f"\nkept {home}: try  CONNECTORCTL_HOME={home} connectorctl logs list")
    return story


def _send(connector: Any, n: int) -> tuple[bool, str, Any]:
    from connectorctl.domain.messages import EmailMessage
    from connectorctl.errors import ConnectorError

    message = EmailMessage(to=("customer@example.com",), subject=f"Invoice {n}", text="Thank you for your order.")
    try:
        result = connector.email().send(message)
        return True, "sent", result.correlation_id
    except ConnectorError as exc:
        return False, f"{exc.code}: {exc.message}", getattr(exc, "correlation_id", None)


def _attempts(connector: Any, correlation_id: str | None) -> str:
    from connectorctl.store.queries import LogFilter, list_logs

    if not correlation_id:
        return ""
    rows = list_logs(connector.db, LogFilter(correlation_id=correlation_id), 10)
    return ", ".join(
        f"#{r['attempt_number']} {r['status']}" + (f" {r['http_status_code']}" if r["http_status_code"] else "")
        for r in reversed(rows)
    )


def _step(connector: Any, vendor: DemoVendorServer, out: Any, n: int) -> bool:
    before = vendor.requests
    ok, text, cid = _send(connector, n)
    colour = "green" if ok else "red"
    state = connector.pipeline.breaker.state("demo").state.value
    out.print(
        f"  invoice {n}: [{colour}]{text}[/{colour}]  attempts: {_attempts(connector, cid)}  "
        f"(HTTP requests: {vendor.requests - before}, circuit: {state})",
        highlight=False,
    )
    return ok


def _default_sinks(connector: Any, out: Any) -> list[str]:
    """One email and one SMS through the default `file` vendor: what a fresh installation does."""
    from connectorctl.domain.messages import EmailMessage, SmsMessage

    email = connector.email("file").send(
        EmailMessage(to=("customer@example.com",), subject="Welcome", text="Hello from the ERP.")
    )
    sms = connector.sms("file").send(SmsMessage(to="+1 415 555 0123", body="Your order has shipped."))
    outbox = connector.settings.outbox_dir()
    files = sorted(p.name for p in outbox.iterdir())
    out.print(
        f"  email {email.recipients[0].status.value}, SMS to {sms.recipients[0].recipient} "
        f"{sms.recipients[0].status.value}; "
        f"outbox {outbox}: {', '.join(files)}",
        highlight=False,
    )
    return files


def _story(connector: Any, vendor: DemoVendorServer, out: Any, open_seconds: float) -> dict[str, Any]:
    story: dict[str, Any] = {}
    out.print("\n[bold]0. the embedded default[/bold]: the `file` sink, no vendor account needed")
    story["outbox"] = _default_sinks(connector, out)
    out.print("\n[bold]1. a flaky vendor[/bold]: each first try gets 503, the retry succeeds")
    vendor.mode = "flaky"
    story["flaky"] = [_step(connector, vendor, out, n) for n in (1, 2)]
    out.print("\n[bold]2. an outage[/bold]: every request gets 503; after 3 failed attempts the circuit opens")
    vendor.mode = "down"
    story["outage"] = _step(connector, vendor, out, 3)
    before = vendor.requests
    story["fast_fail"] = _step(connector, vendor, out, 4)
    story["fast_fail_requests"] = vendor.requests - before
    out.print("  the open circuit failed invoice 4 fast, without touching the vendor")
    out.print(
        f"\n[bold]3. recovery[/bold]: the vendor is back; after {open_seconds:g} s one half-open probe is let through"
    )
    vendor.mode = "up"
    state = connector.pipeline.breaker.state("demo")
    if state.open_until:
        time.sleep(max(0.0, state.open_until - time.time()) + 0.05)
    story["probe"] = _step(connector, vendor, out, 5)
    story["after"] = _step(connector, vendor, out, 6)
    story["circuit_state"] = connector.pipeline.breaker.state("demo").state.value
    story["events"] = [e["action"] for e in reversed(connector.pipeline.breaker.events("demo"))]
    out.print(f"  circuit transitions: {' -> '.join(story['events'])}")
    return story


def _show_results(connector: Any, out: Any) -> None:
    from datetime import datetime, timedelta, timezone

    from connectorctl.cli.logs import rows_table
    from connectorctl.cli.metrics import _view
    from connectorctl.store.queries import LogFilter, metrics_for, series, tail_logs
    from connectorctl.times import to_iso

    out.print("\n[bold]$ connectorctl logs tail -n 20[/bold]")
    rows, _ = tail_logs(connector.db, LogFilter(), 20)
    out.print(rows_table(rows))
    now = datetime.now(timezone.utc)
    start = now - timedelta(minutes=1)
    flt = LogFilter(service="demo", since=start, until=now)
    data = {
        "service": "demo",
        "period": {"from": to_iso(start), "to": to_iso(now)},
        "metrics": metrics_for(connector.db, flt),
        "series": series(connector.db, flt, start, now, 12),
    }
    out.print("\n[bold]$ connectorctl metrics demo --since 1m[/bold]")
    out.print(_view(data))
