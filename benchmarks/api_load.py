"""Load test of `connectorctl serve` on a large integration log.

    python benchmarks/api_load.py                      # 1,000,000 rows, 50 clients, 20 s
    python benchmarks/api_load.py --rows 100000 --duration 5 --clients 20

Steps: build (or reuse, with --db) a log of --rows rows spread over 30 days,
start `connectorctl serve` as its own process, start a writer process that
keeps inserting log rows (one autocommit INSERT each, like the pipeline), then
measure /api/connector/status with one client, then drive a mix of every
endpoint with --clients concurrent keep-alive connections for --duration
seconds.  Prints requests/s, latency percentiles, errors and 5xx, and the
status p99 under load against its single-client median (target <= 5x).

The load client is a minimal asyncio HTTP/1.1 client: httpx costs ~1.5 ms of
client CPU per request (measured-baselines.md), which on a 2-core machine
would measure the client rather than the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVICES = [("fake", 0.40), ("file", 0.15), ("console", 0.10)] + [(f"vendor{i}", 0.05) for i in range(7)]
CONFIG = "email_vendor: [fake, file]\nsms_vendor: [console]\ndatabase: {db}\n"
MIX = [  # (weight, label, path)
    (30, "status", "/api/connector/status"),
    (10, "health", "/api/connector/health"),
    (12, "logs", "/api/connector/logs?service=fake&limit=100"),
    (6, "logs", "/api/connector/logs?status=failed&limit=50"),
    (6, "logs", "/api/connector/logs?service=console&limit=20&offset=40"),
    (4, "logs", "/api/connector/logs?tenant_id=t3&date_from=2020-01-01T00:00:00Z&limit=100"),
    (12, "metrics", "/api/connector/metrics/vendor3?from=-1days"),
    (8, "metrics", "/api/connector/metrics/fake?from=-1days"),
    (4, "metrics", "/api/connector/metrics/file"),
    (3, "prometheus", "/metrics"),
    (5, "bad_input", "/api/connector/logs?limit=9999"),
]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_db(path: Path, rows: int, days: int = 30, seed: int = 7) -> float:
    """Create the schema through the real migrations, then bulk-load with indexes dropped and rebuilt."""
    from connectorctl.store.db import StateDB
    from connectorctl.store.logs import INSERT_LOG

    started = time.perf_counter()
    StateDB(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name='integration_logs' AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    rng = random.Random(seed)
    names = [s for s, _ in SERVICES]
    weights = [w for _, w in SERVICES]
    now = time.time()
    start = now - days * 86400
    step = (now - start - 60) / rows
    batch = []
    for i in range(rows):
        created = start + i * step
        service = rng.choices(names, weights)[0]
        roll = rng.random()
        status, http, error = ("success", 200, None) if roll < 0.97 else (("failed", 503, "vendor unavailable") if roll < 0.99 else ("rate_limited", None, "local rate limit"))
        duration = int(rng.lognormvariate(5.3, 0.6)) if status != "rate_limited" else 0
        batch.append((
            f"{int(created * 1000):013X}{i:013X}", f"t{i % 10}", service, "send_email", f"https://{service}.example.invalid/send", "POST",
            status, http, duration, '{"to":"user@example.com","subject":"Invoice"}', '{"id":"msg"}' if status == "success" else None,
            error, None if status == "success" else status, 1 + (roll > 0.995), None, "outbound", iso(created),
        ))
        if len(batch) == 20000:
            conn.execute("BEGIN")
            conn.executemany(INSERT_LOG, batch)
            conn.execute("COMMIT")
            batch.clear()
    if batch:
        conn.execute("BEGIN")
        conn.executemany(INSERT_LOG, batch)
        conn.execute("COMMIT")
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - started


def writer(db: str, rate: float, stop_file: str) -> None:
    """Child process: one autocommit INSERT per row at ``rate`` rows/s until ``stop_file`` appears."""
    from connectorctl.store.db import StateDB
    from connectorctl.store.logs import INSERT_LOG

    state = StateDB(db, migrate=False)
    written = errors = 0
    worst = 0.0
    interval = 1.0 / rate
    next_at = time.monotonic()
    rng = random.Random(11)
    while not os.path.exists(stop_file):
        service = rng.choice(["fake", "file", "console", "vendor3"])
        ok = rng.random() < 0.98
        row = (f"W{time.time_ns():020X}{written:05X}", "t1", service, "send_email", "https://x.example.invalid/send", "POST",
               "success" if ok else "failed", 200 if ok else 503, rng.randint(50, 400), '{"to":"a@example.com"}', None,
               None if ok else "vendor unavailable", None if ok else "vendor_unavailable", 1, None, "outbound", iso(time.time()))
        t0 = time.perf_counter()
        try:
            state.run(lambda c: c.execute(INSERT_LOG, row))
            written += 1
        except Exception:  # noqa: BLE001 - counted and reported
            errors += 1
        worst = max(worst, time.perf_counter() - t0)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(json.dumps({"written": written, "errors": errors, "worst_insert_ms": round(worst * 1000, 1)}), flush=True)


async def request(reader: asyncio.StreamReader, writer_: asyncio.StreamWriter, path: str) -> int:
    writer_.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"content-length: *(\d+)", head, re.I)
    await reader.readexactly(int(match.group(1)) if match else 0)
    return status


async def client_loop(port: int, paths: list[tuple[str, str]], until: float, samples: list[tuple[str, int, float]], errors: list[str], seed: int, think: float) -> None:
    rng = random.Random(seed)
    conn = None
    while time.monotonic() < until:
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))
        label, path = rng.choice(paths)
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
            t0 = time.perf_counter()
            status = await asyncio.wait_for(request(*conn, path), timeout=30)
            samples.append((label, status, time.perf_counter() - t0))
        except Exception as exc:  # noqa: BLE001 - every client-side failure is an error
            errors.append(type(exc).__name__)
            if conn:
                conn[1].close()
            conn = None
    if conn:
        conn[1].close()


def run_clients(port: int, clients: int, seconds: float, paths: list[tuple[str, str]], think: float = 0.0) -> tuple[list[tuple[str, int, float]], list[str], float]:
    samples: list[tuple[str, int, float]] = []
    errors: list[str] = []

    async def main() -> float:
        until = time.monotonic() + seconds
        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop(port, paths, until, samples, errors, i, think) for i in range(clients)))
        return time.perf_counter() - t0

    try:
        import uvloop

        elapsed = uvloop.run(main())
    except ImportError:
        elapsed = asyncio.run(main())
    return samples, errors, elapsed


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p * len(ordered) + 0.5)) - 1))] * 1000 if ordered else float("nan")


def start_server(home: Path, status_max_age: float) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, CONNECTORCTL_HOME=str(home), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "serve", "--port", "0", "--no-access-log", "--status-max-age", str(status_max_age)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
    for line in proc.stderr:  # type: ignore[union-attr]
        match = re.search(r"listening on http://[^:]+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
            return proc, int(match.group(1))
    raise SystemExit("serve did not start: " + str(proc.wait()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--write-rate", type=float, default=200.0, help="rows/s the writer process inserts during the run")
    ap.add_argument("--think-ms", type=float, default=200.0, help="mean pause per client between requests in the paced phase")
    ap.add_argument("--status-max-age", type=float, default=1.0, help="passed to serve (0 = status recomputed per request)")
    ap.add_argument("--db", help="reuse (or build once into) this database file")
    ap.add_argument("--writer", nargs=2, metavar=("DB", "STOPFILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.writer:
        writer(args.writer[0], args.write_rate, args.writer[1])
        return
    work = Path(tempfile.mkdtemp(prefix="api-load-"))
    db = Path(args.db) if args.db else work / "connectorctl.db"
    if not db.exists():
        print(f"building {args.rows:,} rows ...", file=sys.stderr)
        print(f"built in {build_db(db, args.rows):.1f} s ({db.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    rows = sqlite3.connect(db).execute("SELECT count(*) FROM integration_logs").fetchone()[0]
    (work / "config.yaml").write_text(CONFIG.format(db=json.dumps(str(db))))
    server, port = start_server(work, args.status_max_age)
    stop_file = str(work / "stop")
    writer_proc = subprocess.Popen([sys.executable, __file__, "--writer", str(db), stop_file, "--write-rate", str(args.write_rate)],
                                   stdout=subprocess.PIPE, text=True)
    try:
        import http.client

        t0 = time.perf_counter()
        scrape = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        scrape.request("GET", "/metrics")
        first_ok = scrape.getresponse().read() and True
        scrape.close()
        first_scrape = time.perf_counter() - t0
        run_clients(port, 1, 1.0, [("status", "/api/connector/status")])  # warm-up
        single, single_errors, _ = run_clients(port, 1, 5.0, [("status", "/api/connector/status")])
        paths = [(label, path) for weight, label, path in MIX for _ in range(weight)]
        phases = {
            "saturated": run_clients(port, args.clients, args.duration, paths),
            f"paced_{args.think_ms:g}ms_think": run_clients(port, args.clients, args.duration, paths, args.think_ms / 1000),
        }
    finally:
        Path(stop_file).touch()
        writer_out = json.loads(writer_proc.communicate(timeout=30)[0] or "{}")
        server.send_signal(signal.SIGTERM)
        server_rc = server.wait(timeout=60)
    single_median = statistics.median(s[2] for s in single) * 1000
    report = {
        "rows": rows, "clients": args.clients, "status_max_age_s": args.status_max_age, "status_single_client_median_ms": round(single_median, 2),
        "status_single_client_p99_ms": round(pct([s[2] for s in single], 0.99), 2),
        "phases": {name: summarize(*result, single_median) for name, result in phases.items()},
        "errors_outside_phases": len(single_errors) + (not first_ok),
        "first_prometheus_scrape_s": round(first_scrape, 2), "writer": writer_out, "server_exit_code": server_rc,
    }
    print(json.dumps(report, indent=2))


def summarize(samples: list[tuple[str, int, float]], errors: list[str], elapsed: float, single_median: float) -> dict[str, object]:
    latencies = [s[2] for s in samples]
    status_p99 = pct([s[2] for s in samples if s[0] == "status"], 0.99)
    return {
        "seconds": round(elapsed, 1), "requests": len(samples), "requests_per_s": round(len(samples) / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50), 1), "p99_ms": round(pct(latencies, 0.99), 1),
        "errors": len(errors), "http_5xx": sum(1 for s in samples if s[1] >= 500),
        "unexpected_4xx": sum(1 for s in samples if 400 <= s[1] < 500 and s[0] != "bad_input"),
        "by_endpoint": {label: {"n": len(v), "p50_ms": round(pct(v, 0.5), 1), "p99_ms": round(pct(v, 0.99), 1)}
                        for label in sorted({s[0] for s in samples}) for v in [[s[2] for s in samples if s[0] == label]]},
        "status_p99_ms": round(status_p99, 1), "status_p99_over_single_median": round(status_p99 / single_median, 1),
    }


if __name__ == "__main__":
    main()
