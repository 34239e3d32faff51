"""Load test of `connectorctl serve` on a large integration log.

    python benchmarks/api_load.py                      # 1,000,000 rows, 50 clients, 20 s per phase
    python benchmarks/api_load.py --rows 100000 --duration 5 --clients 20

Steps: build (or reuse, with --db) a log of --rows rows spread over 30 days,
start `connectorctl serve` as its own process and a writer process that keeps
inserting log rows (one autocommit INSERT each, like the pipeline), then run
two phases of a mix of every endpoint with --clients keep-alive connections:

* closed_loop: each client sends its next request as soon as it has an answer;
* paced: each client pauses a random 0..2x --think-ms first, as pollers do.

Each phase's status p99 is compared with the median of ONE client behaving the
same way (back to back, or paced), so the ratio shows what concurrency costs.
A paced single client is itself ~4x slower than a back-to-back one (every
request wakes an idle server and client), so the paced phase also reports its
p99 against the back-to-back median.  Target per phase: no errors, no 5xx,
status p99 <= 5x its single-client median.

The load client is a minimal asyncio HTTP/1.1 client (httpx costs ~1.5 ms of
client CPU per request, measured-baselines.md); see Connection for why it is a
Protocol.  Each phase's first --warmup seconds (connecting, the synchronised
first burst) are not measured, but errors there still count.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import shutil
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
from typing import NamedTuple

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


class Connection(asyncio.Protocol):
    """A keep-alive HTTP/1.1 client connection that timestamps a response in the callback that completes it.

    A coroutine reading a stream would only see the bytes one event-loop pass
    later, behind every other connection's callbacks: client latency, not the
    server's, in the tail this benchmark is about.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.expected: int | None = None
        self.status = 0
        self.started = 0.0
        self.waiter: asyncio.Future[tuple[int, float]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get(self, path: str) -> "asyncio.Future[tuple[int, float]]":
        """Send one request; the future gives ``(status, seconds)``."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.started = time.perf_counter()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.expected is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            self.status = int(head[9:12])
            length = re.search(rb"content-length: *(\d+)", head)
            self.expected = end + 4 + (int(length.group(1)) if length else 0)
        if len(self.buffer) >= self.expected:
            elapsed = time.perf_counter() - self.started
            del self.buffer[:self.expected]
            self.expected = None
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result((self.status, elapsed))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("server closed the connection"))


async def client_loop(port: int, paths: list[tuple[str, str]], measure_from: float, until: float, samples: list[tuple[str, int, float]],
                      errors: list[str], seed: int, think: float) -> None:
    """One keep-alive connection sending requests until ``until``; samples count from ``measure_from`` (errors always)."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    conn: Connection | None = None
    while time.perf_counter() < until:
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))
        label, path = rng.choice(paths)
        try:
            if conn is None:
                _, conn = await loop.create_connection(Connection, "127.0.0.1", port)
            async with asyncio.timeout(30):
                status, seconds = await conn.get(path)
            if conn.started >= measure_from:
                samples.append((label, status, seconds))
            elif status >= 500:
                errors.append(f"HTTP {status} during warm-up")
        except Exception as exc:  # noqa: BLE001 - every client-side failure is an error
            errors.append(type(exc).__name__)
            if conn and conn.transport:
                conn.transport.close()
            conn = None
    if conn and conn.transport:
        conn.transport.close()


class Phase(NamedTuple):
    samples: list[tuple[str, int, float]]
    errors: list[str]
    seconds: float


def run_clients(port: int, clients: int, seconds: float, paths: list[tuple[str, str]], think: float = 0.0, warmup: float = 0.0) -> Phase:
    """``clients`` connections for ``warmup + seconds``; the warm-up (connecting, the first synchronised burst) is not measured."""
    samples: list[tuple[str, int, float]] = []
    errors: list[str] = []

    async def main() -> None:
        measure_from = time.perf_counter() + warmup
        await asyncio.gather(*(client_loop(port, paths, measure_from, measure_from + seconds, samples, errors, i, think) for i in range(clients)))

    gc.disable()  # a collection pass in the client would be measured as server latency
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    finally:
        gc.enable()
    return Phase(samples, errors, seconds)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(p * len(ordered) + 0.5)) - 1))] * 1000 if ordered else float("nan")


def start_server(home: Path, status_max_age: float, *serve_args: str) -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ, CONNECTORCTL_HOME=str(home), PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "serve", "--port", "0", "--no-access-log", "--status-max-age", str(status_max_age), *serve_args],
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
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds each phase runs before it is measured (connecting, the first burst)")
    ap.add_argument("--think-ms", type=float, default=200.0, help="mean pause per client between requests in the paced phase")
    ap.add_argument("--status-max-age", type=float, default=1.0, help="passed to serve (0 = status recomputed per request)")
    ap.add_argument("--processes", type=int, help="passed to serve (default: serve's own)")
    ap.add_argument("--read-workers", type=int, default=1, help="passed to serve (per server process)")
    ap.add_argument("--read-priority", default="idle", help="passed to serve")
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
    server, port = start_server(work, args.status_max_age, "--read-workers", str(args.read_workers), "--read-priority", args.read_priority,
                                *(["--processes", str(args.processes)] if args.processes else []))
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
        paths = [(label, path) for weight, label, path in MIX for _ in range(weight)]
        status_only = [("status", "/api/connector/status")]
        think = args.think_ms / 1000
        singles = {"closed_loop": run_clients(port, 1, 5.0, status_only, warmup=1.0),
                   "paced": run_clients(port, 1, args.duration, status_only, think, warmup=1.0)}
        phases = {"closed_loop": run_clients(port, args.clients, args.duration, paths, warmup=args.warmup),
                  "paced": run_clients(port, args.clients, args.duration, paths, think, args.warmup)}
    finally:
        Path(stop_file).touch()
        writer_out = json.loads(writer_proc.communicate(timeout=30)[0] or "{}")
        server.send_signal(signal.SIGTERM)
        server_rc = server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: pct([s[2] for s in single.samples], 0.5) for name, single in singles.items()}
    report = {
        "rows": rows, "clients": args.clients, "think_ms": args.think_ms, "status_max_age_s": args.status_max_age, "warmup_s": args.warmup,
        "processes": args.processes or "default", "read_workers": args.read_workers, "read_priority": args.read_priority,
        "phases": {name: summarize(result, medians[name], medians["closed_loop"]) for name, result in phases.items()},
        "errors_outside_phases": sum(len(single.errors) for single in singles.values()) + (not first_ok),
        "first_prometheus_scrape_s": round(first_scrape, 2), "writer": writer_out, "server_exit_code": server_rc,
    }
    print(json.dumps(report, indent=2))


def summarize(phase: Phase, single_median: float, back_to_back_median: float) -> dict[str, object]:
    samples, errors, elapsed = phase.samples, phase.errors, phase.seconds
    latencies = [s[2] for s in samples]
    status_p99 = pct([s[2] for s in samples if s[0] == "status"], 0.99)
    return {
        "seconds": round(elapsed, 1), "requests": len(samples), "requests_per_s": round(len(samples) / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50), 1), "p99_ms": round(pct(latencies, 0.99), 1),
        "errors": len(errors), "http_5xx": sum(1 for s in samples if s[1] >= 500),
        "unexpected_4xx": sum(1 for s in samples if 400 <= s[1] < 500 and s[0] != "bad_input"),
        "by_endpoint": {label: {"n": len(v), "p50_ms": round(pct(v, 0.5), 1), "p99_ms": round(pct(v, 0.99), 1)}
                        for label in sorted({s[0] for s in samples}) for v in [[s[2] for s in samples if s[0] == label]]},
        "status_single_client_median_ms": round(single_median, 3), "status_p99_ms": round(status_p99, 3),
        "status_p99_over_single_median": round(status_p99 / single_median, 2),
        "status_p99_over_back_to_back_median": round(status_p99 / back_to_back_median, 2),
        "target_met": not errors and not any(s[1] >= 500 for s in samples) and status_p99 <= 5 * single_median,
    }


if __name__ == "__main__":
    main()
