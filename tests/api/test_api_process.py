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
import time
from pathlib import Path
from typing import Any, Callable, Iterator

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
    served = start(seeded_home, "--workers", "2")
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


def all_gone(pids: list[int], within: float = 5.0) -> bool:
    """The workers are reaped before the server exits; multiprocessing's resource tracker only notices a moment later."""
    deadline = time.monotonic() + within
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def spawned_children(pid: int) -> list[int]:
    return [child for child in children(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def wait_for(condition: Callable[[], Any], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
    return result


def test_serve_answers_over_http_and_stops_cleanly_on_sigterm(server: Served) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        health = http.get("/api/connector/health")
        workers = wait_for(lambda: kids if len(kids := spawned_children(server.proc.pid)) == 2 else None)
        assert health.status_code == 200 and health.json()["services"] == {"database": "connected", "connector": "operational"}
        logs = http.get("/api/connector/logs", params={"service": "fake", "limit": 3}).json()
        assert [r["id"] for r in logs["data"]] == [rid(3), rid(2), rid(1)]
        assert logs["meta"] == {"limit": 3, "offset": 0, "count": 3}
        status = http.get("/api/connector/status").json()
        assert set(status["services"]) == {"file"}  # the default config: the file sink on both channels
        assert http.get("/api/connector/metrics/fake", params={"from": "2020-01-01", "to": "2030-01-01"}).json()["metrics"]["success_count"] == 3
        assert 'connectorctl_calls_total{service="fake",status="success"} 3.0' in http.get("/metrics").text
        assert http.get("/api/connector/logs", params={"limit": 999}).status_code == 400
    for _ in range(6):  # fresh connections: either worker may take each one, and both count the same
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert 'connectorctl_calls_total{service="fake",status="success"} 3.0' in http.get("/metrics").text
    assert stop(server) == 0
    assert all_gone(workers)
    output = rest_of_output(server.lines)
    access = re.findall(r"\[(\d+)\] INFO uvicorn.access: .*\"GET /api/connector/status HTTP/1.1\" 200", output)
    assert access and set(map(int, access)) <= set(workers)  # access log on stderr, with the worker's process id
    assert server.proc.stdout is not None and server.proc.stdout.read() == ""


def test_a_worker_that_dies_is_replaced_and_the_port_keeps_answering(server: Served) -> None:
    first = wait_for(lambda: kids if len(kids := spawned_children(server.proc.pid)) == 2 else None)
    os.kill(first[0], signal.SIGKILL)
    replaced = wait_for(lambda: kids if len(kids := spawned_children(server.proc.pid)) == 2 and first[0] not in kids else None)
    assert first[1] in replaced
    for _ in range(4):
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/api/connector/status").status_code == 200
    assert stop(server) == 0
    assert f"Child process [{first[0]}] died" in rest_of_output(server.lines)


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
    """A terminal's Ctrl-C signals the supervisor and its workers alike: each still finishes and exits quietly."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=str(seeded_home))
    proc = subprocess.Popen([sys.executable, "-m", "connectorctl", "serve", "--port", "0", "--workers", "2"],
                            stderr=subprocess.PIPE, text=True, env=full_env, cwd=ROOT, start_new_session=True)
    try:
        assert proc.stderr is not None
        port = int(re.search(r"listening on http://[^:]+:(\d+)", proc.stderr.readline()).group(1))  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            assert http.get("/api/connector/logs", params={"limit": 1}).status_code == 200
        workers = wait_for(lambda: kids if len(kids := spawned_children(proc.pid)) == 2 else None)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        output = proc.stderr.read()
        assert "Traceback" not in output and "KeyboardInterrupt" not in output
        assert all_gone(workers)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_plain_uvicorn_serves_the_same_app_from_the_environment(seeded_home: Path) -> None:
    """The documented alternative to `serve`: uvicorn's own command line with the app factory."""
    token = "uvicorn-token-5e21"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=str(seeded_home), CONNECTORCTL_API_TOKEN=token)
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "connectorctl.api:from_environment", "--port", "0"],
                            stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None
        port = wait_for(lambda: re.search(r"running on http://[^:]+:(\d+)", proc.stderr.readline()))  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{port.group(1)}", timeout=10, headers={"Authorization": f"Bearer {token}"}) as http:
            logs = http.get("/api/connector/logs", params={"service": "fake", "limit": 3}).json()
            assert [r["id"] for r in logs["data"]] == [rid(3), rid(2), rid(1)]
            assert http.get("/api/connector/status", headers={"Authorization": "Bearer nope"}).status_code == 401
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
