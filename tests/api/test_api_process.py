"""``connectorctl serve`` as a real process on 127.0.0.1, queried over real HTTP."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from connectorctl.gateway import Connector
from connectorctl.store.logs import INSERT_LOG
from tests.api.conftest import SEED, log_row, make_settings, rid
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def rest_of_output(lines: "queue.Queue[str]") -> str:
    out = []
    while line := lines.get(timeout=30):
        out.append(line)
    return "".join(out)


class Served:
    def __init__(self, proc: subprocess.Popen[str], port: int, lines: "queue.Queue[str]") -> None:
        self.proc, self.port, self.lines = proc, port, lines
        self.url = f"http://127.0.0.1:{port}"


def start(home: Path, *args: str, env: dict[str, str] | None = None) -> Served:
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=str(home), **(env or {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "connectorctl", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT,
    )
    lines: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=30)
        except queue.Empty:
            proc.kill()
            raise AssertionError("serve did not report its address within 30 s") from None
        match = re.search(r"listening on http://[^:]+:(\d+)", line)
        if match:
            return Served(proc, int(match.group(1)), lines)


def stop(served: Served) -> int:
    if served.proc.poll() is None:
        served.proc.send_signal(signal.SIGTERM)
    return served.proc.wait(timeout=30)


@pytest.fixture
def seeded_home(home: Path) -> Path:
    connector = Connector(make_settings(home))
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, SEED)
    connector.close()
    return home


@pytest.fixture
def server(seeded_home: Path) -> Iterator[Served]:
    served = start(seeded_home)
    yield served
    if served.proc.poll() is None:
        served.proc.kill()
        served.proc.wait()


def children(pid: int) -> list[int]:
    """Child processes started by any thread of ``pid`` (Linux /proc)."""
    return [int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()]


def gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "\nState:\tZ" in status.read_text()


def test_serve_answers_over_http_and_stops_cleanly_on_sigterm(server: Served) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        health = http.get("/api/connector/health")  # answered once start-up (which spawns the workers) is done
        workers = children(server.proc.pid)
        spawned = [pid for pid in workers if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(spawned) == 3  # two read workers (--read-workers 2) and the status worker
        assert health.status_code == 200 and health.json()["services"] == {"database": "connected", "connector": "operational"}
        logs = http.get("/api/connector/logs", params={"service": "fake", "limit": 3}).json()
        assert [r["id"] for r in logs["data"]] == [rid(3), rid(2), rid(1)]
        assert logs["meta"] == {"limit": 3, "offset": 0, "count": 3}
        status = http.get("/api/connector/status").json()
        assert set(status["services"]) == {"file"}  # the default config: the file sink on both channels
        assert http.get("/api/connector/metrics/fake", params={"from": "2020-01-01", "to": "2030-01-01"}).json()["metrics"]["success_count"] == 3
        assert 'connectorctl_calls_total{service="fake",status="success"} 3.0' in http.get("/metrics").text
        assert http.get("/api/connector/logs", params={"limit": 999}).status_code == 400
    assert stop(server) == 0
    assert all(gone(pid) for pid in workers)
    output = rest_of_output(server.lines)
    assert '"GET /api/connector/status HTTP/1.1" 200' in output  # access log on stderr, stdout stays clean
    assert server.proc.stdout is not None and server.proc.stdout.read() == ""


def test_sigterm_lets_an_in_flight_response_finish(seeded_home: Path) -> None:
    """The client holds a ~20 MB response half-read while SIGTERM arrives; it still gets every byte."""
    big = {"blob": "x" * 40_000}
    connector = Connector(make_settings(seeded_home))
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, [log_row(f"01JBIG{i:020d}", "fake", "success", 1, __import__("datetime").timedelta(hours=1), request=big) for i in range(500)])
    connector.close()
    served = start(seeded_home, "--no-access-log")
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server cannot push it all into the kernel
        sock.connect(("127.0.0.1", served.port))
        sock.sendall(b"GET /api/connector/logs?limit=500&service=fake HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        served.proc.send_signal(signal.SIGTERM)  # mid-response
        chunks = [first]
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
        sock.close()
        raw = b"".join(chunks)
        head, _, body = raw.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        assert length > 20_000_000 and len(body) == length
        assert len(json.loads(body)["data"]) == 500
        assert served.proc.wait(timeout=30) == 0
    finally:
        if served.proc.poll() is None:
            served.proc.kill()


def test_off_loopback_needs_and_checks_the_token(seeded_home: Path) -> None:
    token = "proc-token-31a7c2"
    served = start(seeded_home, "--host", "0.0.0.0", env={"CONNECTORCTL_API_TOKEN": token})
    try:
        with httpx.Client(base_url=served.url, timeout=10) as http:
            assert http.get("/api/connector/health").status_code == 401
            assert http.get("/api/connector/health", headers={"Authorization": "Bearer nope"}).status_code == 401
            assert http.get("/api/connector/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert stop(served) == 0
        output = rest_of_output(served.lines)
        assert "Shutting down" in output  # the access log and uvicorn's lines were all read
        assert token not in output
    finally:
        if served.proc.poll() is None:
            served.proc.kill()


def test_ctrl_c_reaching_the_whole_process_group_still_stops_cleanly(seeded_home: Path) -> None:
    """A terminal's Ctrl-C signals the server and its read workers; the workers must leave the shutdown to the server."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=str(seeded_home))
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "serve", "--port", "0", "--read-workers", "1"],
                            stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT, start_new_session=True)
    try:
        assert proc.stderr is not None
        port = int(re.search(r"listening on http://[^:]+:(\d+)", proc.stderr.readline()).group(1))  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/api/connector/logs", params={"limit": 1}).status_code == 200  # a read worker is up and used
        workers = children(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        output = proc.stderr.read()
        assert "Traceback" not in output and "KeyboardInterrupt" not in output
        assert all(gone(pid) for pid in workers)
    finally:
        if proc.poll() is None:
            proc.kill()
