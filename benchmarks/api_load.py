"""Load test of `connectorctl serve` on a large integration log, on a quiet and on a busy host.

    python benchmarks/api_load.py                      # 1,000,000 rows, 50 clients, 20 s per phase
    python benchmarks/api_load.py --rows 100000 --duration 5 --clients 20

Steps: build (or reuse, with --db) a log of --rows rows spread over 30 days,
then for each host condition start `connectorctl serve` as its own process and
a writer process that keeps inserting log rows (one autocommit INSERT each,
like the pipeline).  Conditions:

* quiet: nothing else runs;
* busy: two CPU-bound busy-loop processes run beside the server for the whole
  condition (started before the server), as other work on a shared host does.

Per condition: the time of the first Prometheus scrape (from the moment serve
reports its address, so the workers' start-up counts) and of the one after it, the median of ONE
client asking for status back to back, then two phases of a mix of every
endpoint:

* closed_loop: --clients keep-alive connections, each sending its next request
  as soon as it has an answer; its throughput is the measured capacity;
* open_loop: requests arrive at random (Poisson) at half that capacity, whether
  or not earlier ones were answered (new connections as needed), as independent
  pollers do; latency counts from the moment a request was due.

Targets per condition: every request answered (no client errors, no 5xx), the
first scrape under 5 s, and in the open-loop phase status p99 <= 5x the
single-client median.

The load client is a minimal asyncio HTTP/1.1 client (httpx costs ~1.5 ms of
client CPU per request, more than the server spends on a status answer); see
Connection for why it is a Protocol.  Each phase's first --warmup seconds
(connecting, the synchronised first burst) are not measured, but errors there
still count.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
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
import typing
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
                      errors: list[str], seed: int) -> None:
    """One keep-alive connection sending requests until ``until``; samples count from ``measure_from`` (errors always)."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    conn: Connection | None = None
    while time.perf_counter() < until:
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


def run_clients(port: int, clients: int, seconds: float, paths: list[tuple[str, str]], warmup: float = 0.0) -> Phase:
    """``clients`` connections for ``warmup + seconds``; the warm-up (connecting, the first synchronised burst) is not measured."""
    samples: list[tuple[str, int, float]] = []
    errors: list[str] = []

    async def main() -> None:
        measure_from = time.perf_counter() + warmup
        await asyncio.gather(*(client_loop(port, paths, measure_from, measure_from + seconds, samples, errors, i) for i in range(clients)))

    _run(main())
    return Phase(samples, errors, seconds)


def run_open_loop(port: int, rate: float, seconds: float, paths: list[tuple[str, str]], warmup: float = 0.0) -> Phase:
    """Requests due at Poisson arrivals of ``rate`` per second, each on an idle connection or a new one."""
    samples: list[tuple[str, int, float]] = []
    errors: list[str] = []

    async def one(loop: asyncio.AbstractEventLoop, idle: list[Connection], label: str, path: str, due: float, measured: bool) -> None:
        conn = None
        while idle and conn is None:
            conn = idle.pop()
            if conn.transport is None or conn.transport.is_closing():
                conn = None  # the server closed it while idle (keep-alive timeout): not an error
        try:
            if conn is None:
                _, conn = await loop.create_connection(Connection, "127.0.0.1", port)
            async with asyncio.timeout(30):
                status, seconds = await conn.get(path)
            if measured:
                samples.append((label, status, conn.started - due + seconds))
            elif status >= 500:
                errors.append(f"HTTP {status} during warm-up")
            idle.append(conn)
        except Exception as exc:  # noqa: BLE001 - every client-side failure is an error
            errors.append(type(exc).__name__)
            if conn and conn.transport:
                conn.transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rng = random.Random(5)
        idle: list[Connection] = []
        tasks = []
        due = time.perf_counter()
        measure_from, until = due + warmup, due + warmup + seconds
        while due < until:
            due += rng.expovariate(rate)
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            label, path = rng.choice(paths)
            tasks.append(asyncio.ensure_future(one(loop, idle, label, path, due, due >= measure_from)))
        await asyncio.gather(*tasks)
        for conn in idle:
            if conn.transport:
                conn.transport.close()

    _run(main())
    return Phase(samples, errors, seconds)


def _run(main: "typing.Coroutine[None, None, None]") -> None:
    gc.disable()  # a collection pass in the client would be measured as server latency
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:
        asyncio.run(main)
    finally:
        gc.enable()


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


def first_scrape(port: int) -> tuple[bool, float]:
    """``(answered, seconds)`` for one GET /metrics, the first the server sees."""
    import http.client

    started = time.perf_counter()
    try:
        scrape = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        scrape.request("GET", "/metrics")
        ok = scrape.getresponse().status == 200
        scrape.close()
    except OSError:
        ok = False
    return ok, time.perf_counter() - started


def run_condition(busy: bool, work: Path, db: Path, args: argparse.Namespace) -> dict[str, object]:
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if busy else 0)]
    server, port = start_server(work, args.status_max_age, *(["--workers", str(args.workers)] if args.workers else []))
    stop_file = work / "stop"
    stop_file.unlink(missing_ok=True)
    writer_proc = subprocess.Popen([sys.executable, __file__, "--writer", str(db), str(stop_file), "--write-rate", str(args.write_rate)],
                                   stdout=subprocess.PIPE, text=True)
    try:
        scrape_ok, scrape_s = first_scrape(port)  # includes the workers' start-up: the port is bound before they run
        again_ok, again_s = first_scrape(port)
        paths = [(label, path) for weight, label, path in MIX for _ in range(weight)]
        single = run_clients(port, 1, 5.0, [("status", "/api/connector/status")], warmup=1.0)
        closed = run_clients(port, args.clients, args.duration, paths, warmup=args.warmup)
        rate = len(closed.samples) / closed.seconds / 2
        opened = run_open_loop(port, rate, args.duration, paths, args.warmup) if rate else Phase([], ["no capacity measured"], args.duration)
    finally:
        stop_file.touch()
        writer_out = json.loads(writer_proc.communicate(timeout=60)[0] or "{}")
        server.send_signal(signal.SIGTERM)
        server_rc = server.wait(timeout=60)
        for hog in hogs:
            hog.kill()
            hog.wait()
    median = pct([s[2] for s in single.samples], 0.5)
    phases = {"closed_loop": summarize(closed, median), "open_loop": summarize(opened, median)}
    return {
        "busy_loop_processes": len(hogs), "first_prometheus_scrape_s": round(scrape_s, 2), "first_scrape_answered": scrape_ok, "next_scrape_ms": round(again_s * 1000, 1) if again_ok else None,
        "status_single_client_median_ms": round(median, 3), "open_loop_rate_per_s": round(rate, 1), "phases": phases,
        "errors_outside_phases": len(single.errors), "writer": writer_out, "server_exit_code": server_rc,
        "target_met": scrape_ok and scrape_s < 5 and not single.errors and phases["open_loop"]["target_met"]
        and not phases["closed_loop"]["errors"] and not phases["closed_loop"]["http_5xx"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--write-rate", type=float, default=200.0, help="rows/s the writer process inserts during the run")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds each phase runs before it is measured (connecting, the first burst)")
    ap.add_argument("--status-max-age", type=float, default=1.0, help="passed to serve (0 = status recomputed per request)")
    ap.add_argument("--workers", type=int, help="passed to serve (default: serve's own)")
    ap.add_argument("--conditions", default="quiet,busy", help="quiet, busy or both (comma-separated)")
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
    report: dict[str, object] = {"rows": rows, "clients": args.clients, "status_max_age_s": args.status_max_age, "warmup_s": args.warmup,
                                 "workers": args.workers or "default"}
    try:
        for condition in args.conditions.split(","):
            report[condition] = run_condition(condition == "busy", work, db, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


def summarize(phase: Phase, single_median: float) -> dict[str, object]:
    samples, errors, elapsed = phase.samples, phase.errors, phase.seconds
    latencies = [s[2] for s in samples]
    status_p99 = pct([s[2] for s in samples if s[0] == "status"], 0.99)
    return {
        "seconds": round(elapsed, 1), "requests": len(samples), "requests_per_s": round(len(samples) / elapsed, 1),
        "p50_ms": round(pct(latencies, 0.50), 1), "p99_ms": round(pct(latencies, 0.99), 1),
        "errors": len(errors), "error_kinds": dict(collections.Counter(errors)), "http_5xx": sum(1 for s in samples if s[1] >= 500),
        "unexpected_4xx": sum(1 for s in samples if 400 <= s[1] < 500 and s[0] != "bad_input"),
        "by_endpoint": {label: {"n": len(v), "p50_ms": round(pct(v, 0.5), 1), "p99_ms": round(pct(v, 0.99), 1)}
                        for label in sorted({s[0] for s in samples}) for v in [[s[2] for s in samples if s[0] == label]]},
        "status_p99_ms": round(status_p99, 3), "status_p99_over_single_median": round(status_p99 / single_median, 2),
        "target_met": not errors and not any(s[1] >= 500 for s in samples) and status_p99 <= 5 * single_median,
    }


if __name__ == "__main__":
    main()
