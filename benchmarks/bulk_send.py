"""Bulk email throughput: 1000 emails through the full pipeline to a fake SendGrid that answers after 20 ms.

    python benchmarks/bulk_send.py [--emails 1000] [--concurrency 20] [--latency-ms 20] [--runs 3]

The fake vendor runs in its own process (an asyncio HTTP/1.1 keep-alive server on
127.0.0.1, port 0) so its CPU does not compete for our GIL.  Each run sends a new
batch through ``BulkRunner`` -> ``EmailGateway`` (validation, failover walk) ->
``SendGridEmailAdapter`` -> pipeline (rate limiter, circuit breaker, retry,
SQLite integration log) -> httpx, with the batch journal in the same SQLite file.
Printed: achieved wall time over the ideal (emails x latency / concurrency);
target <= 1.25.  Each run also sends the same batch with per-recipient merge
data through SendGrid's batch API (personalizations, up to 1000 per request)
and prints its requests and time against the one-request-per-row run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_KEY = "SG.benchmark-key-000000"
CPU: list[float] = []
BARE_CPU: list[float] = []


# -- the fake vendor (child process) ---------------------------------------------
async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: float) -> None:
    n = 0
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            await asyncio.sleep(latency)
            n += 1
            if method != "POST" or path != "/v3/mail/send" or headers.get("authorization") != f"Bearer {API_KEY}" or not body.startswith(b"{"):
                status, extra, payload = "400 Bad Request", "", b'{"errors":[{"message":"bad request","field":null}]}'
            else:
                status, extra, payload = "202 Accepted", f"X-Message-Id: m{id(writer):x}{n}\r\n", b""
            writer.write(f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _serve(latency: float) -> None:
    server = await asyncio.start_server(lambda r, w: _handle(r, w, latency), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# -- the client ---------------------------------------------------------------------
class _PerRow:
    """The gateway with its batch API turned off: the bulk runner then sends one request per row."""

    def __init__(self, gateway: object) -> None:
        self.send = gateway.send  # type: ignore[attr-defined]

    def batch_limit(self) -> int:
        return 1


def send_requests(conn: object) -> int:
    conn.flush()  # type: ignore[attr-defined]
    return conn.db.run(lambda c: c.execute("SELECT count(*) FROM integration_logs WHERE operation LIKE 'send_email%'").fetchone()[0])  # type: ignore[attr-defined]


def run_once(base_url: str, home: Path, n: int, concurrency: int, run: int, *, batch: bool = False) -> tuple[float, int]:
    from dataclasses import replace

    from connectorctl.bulk.journal import BatchJournal
    from connectorctl.bulk.recipients import Row
    from connectorctl.bulk.runner import BulkReport, BulkRunner
    from connectorctl.credentials.static import StaticCredentialProvider
    from connectorctl.domain.messages import EmailMessage
    from connectorctl.gateway import Connector
    from connectorctl.validation import normalize_email

    config = home / "config.yaml"
    config.write_text(f"email_vendor: sendgrid\nvendors:\n  sendgrid:\n    base_url: {base_url}\n    from_email: shop@example.com\n")
    with Connector(config_path=config, credentials=StaticCredentialProvider({"sendgrid": {"api_key": API_KEY}})) as conn:
        gateway = conn.email()
        template = EmailMessage(to=("x@example.com",), subject="Your invoice {{number}}", text="Thank you for your order, {{name}}.")
        gateway.send(replace(template, merge_data={"number": "0", "name": "warm-up"}))  # warm-up: imports, first connection, schema
        rows = [Row(i + 1, f"customer{i:05d}.run{run}{'b' if batch else ''}@example.com", {"number": str(i), "name": f"Customer {i}"})
                for i in range(n)]
        journal = BatchJournal(conn.db, f"bench-{run}-{batch}-{time.time_ns()}", conn.clock.time)
        journal.open("email", "benchmark", n)
        report = BulkReport(journal.batch_id, "email")
        runner = BulkRunner(gateway if batch else _PerRow(gateway), journal, concurrency=concurrency)
        before = send_requests(conn)

        started, cpu = time.perf_counter(), time.process_time()
        runner.run(rows, normalize_email, lambda row, key: replace(template, to=(key,), merge_data=row.fields), report)
        elapsed = time.perf_counter() - started
        if not batch:
            CPU.append(time.process_time() - cpu)
        counts = report.counts
        if counts["accepted"] != n:
            raise SystemExit(f"benchmark invalid: {counts}")
        return elapsed, send_requests(conn) - before


def run_bare(base_url: str, n: int, concurrency: int) -> float:
    """The floor: the same requests from ``concurrency`` threads with bare httpx (no gateway, no pipeline, no journal)."""
    import json
    import threading

    import httpx

    ssl_context = httpx.create_ssl_context()
    body = json.dumps({"personalizations": [{"to": [{"email": "a@example.com"}]}], "from": {"email": "shop@example.com"},
                       "subject": "Your invoice", "content": [{"type": "text/plain", "value": "Thank you for your order."}]}).encode()
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    clients = [httpx.Client(verify=ssl_context) for _ in range(concurrency)]
    for c in clients:
        c.post(f"{base_url}/v3/mail/send", content=body, headers=headers)  # warm: one open connection each
    items = iter(range(n))
    lock = threading.Lock()

    def worker(client: httpx.Client) -> None:
        while True:
            with lock:
                if next(items, None) is None:
                    return
            if client.post(f"{base_url}/v3/mail/send", content=body, headers=headers).status_code != 202:
                raise SystemExit("bare run: unexpected status")

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    started, cpu = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    BARE_CPU.append(time.process_time() - cpu)
    for c in clients:
        c.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the bare-httpx floor runs")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.latency_ms / 1000))
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--latency-ms", str(args.latency_ms)], stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        ideal = args.emails * args.latency_ms / 1000 / args.concurrency
        url = f"http://127.0.0.1:{port}"
        times, bare, batched = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CONNECTORCTL_HOME"] = tmp
            for run in range(args.runs):  # alternate A/B blocks: this box is shared and noisy
                times.append(run_once(url, Path(tmp), args.emails, args.concurrency, run))
                batched.append(run_once(url, Path(tmp), args.emails, args.concurrency, run, batch=True))
                bare.append(run_bare(url, args.emails, args.concurrency) if args.baseline else float("nan"))
        for i, ((t, requests), (bt, brequests), b) in enumerate(zip(times, batched, bare), 1):
            bare_cpu = f", {BARE_CPU[i - 1] * 1000 / args.emails:.2f} ms/email" if args.baseline else ""
            print(f"run {i}: {args.emails} emails in {t:.3f} s ({args.emails / t:.0f}/s, {requests} requests), ratio {t / ideal:.3f}, "
                  f"client CPU {CPU[i - 1] * 1000 / args.emails:.2f} ms/email; batch API {bt:.3f} s ({brequests} requests, "
                  f"{t / bt:.1f}x faster); bare httpx {b:.3f} s (ratio {b / ideal:.3f}{bare_cpu})")
        per_row = [t for t, _ in times]
        med = statistics.median(per_row)
        batch_med = statistics.median(t for t, _ in batched)
        print(f"batch API (personalizations, <= 1000 per request): median {batch_med:.3f} s in {batched[0][1]} requests "
              f"vs one request per row: median {med:.3f} s in {times[0][1]} requests ({med / batch_med:.1f}x)")
        print(f"ideal {ideal:.3f} s ({args.emails} x {args.latency_ms:g} ms / {args.concurrency}); "
              f"median achieved {med:.3f} s; ratio {med / ideal:.3f} (target <= 1.25)")
        if args.baseline:
            print(f"bare httpx median {statistics.median(bare):.3f} s (ratio {statistics.median(bare) / ideal:.3f}); "
                  f"pipeline / bare {med / statistics.median(bare):.3f}")
    finally:
        server.terminate()
        server.wait(5)


if __name__ == "__main__":
    main()
