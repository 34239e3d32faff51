"""A call that has returned to its caller has its integration-log row committed.

Checked the way applications run us: forked workers (gunicorn, celery, multiprocessing), which
end with ``os._exit`` and never run exit hooks; spawned workers; threads sharing one Connector,
each looking for its own row from a separate connection the moment its call returns.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from connectorctl.domain.messages import EmailMessage
from connectorctl.gateway import Connector
from tests.conftest import ROOT, write_config


def _send(n: int, tag: str) -> None:
    with_connector = Connector()
    gateway = with_connector.email()
    for i in range(n):
        gateway.send(EmailMessage(to=(f"user{i}@example.com",), subject=f"{tag} #{i}", text="hello"))
    # no close(), no flush(): a worker that just returns is the case that used to lose rows


def _rows(home: Path) -> int:
    with sqlite3.connect(home / "connectorctl.db") as conn:
        return conn.execute("SELECT count(*) FROM integration_logs WHERE operation='send_email'").fetchone()[0]


@pytest.mark.parametrize("start_method,workers,per_worker", [("fork", 4, 40), ("spawn", 2, 10)])
def test_worker_processes_lose_no_row(home: Path, start_method: str, workers: int, per_worker: int) -> None:
    write_config(home, "email_vendor: file\n")
    Connector().close()  # schema in place before the workers race
    ctx = multiprocessing.get_context(start_method)
    procs = [ctx.Process(target=_send, args=(per_worker, f"w{n}")) for n in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(list((home / "outbox").glob("*.eml"))) == workers * per_worker
    assert _rows(home) == workers * per_worker


def test_a_process_that_ends_with_os_exit_right_after_the_call_keeps_its_row(home: Path) -> None:
    write_config(home, "email_vendor: file\n")
    code = (
        "import os\n"
        "from connectorctl import Connector, EmailMessage\n"
        "Connector().email().send(EmailMessage(to=('a@example.com',), subject='s', text='x'))\n"
        "os._exit(0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert _rows(home) == 1


def test_each_thread_finds_its_row_committed_when_its_call_returns(home: Path) -> None:
    write_config(home, "email_vendor: file\n")
    connector = Connector()
    gateway = connector.email()
    missing: list[str] = []

    def worker(n: int) -> None:
        reader = sqlite3.connect(home / "connectorctl.db")  # another connection sees only committed rows
        for i in range(25):
            result = gateway.send(EmailMessage(to=(f"t{n}-{i}@example.com",), subject="s", text="x"))
            found = reader.execute("SELECT count(*) FROM integration_logs WHERE correlation_id=?", (result.correlation_id,)).fetchone()[0]
            if found != 1:
                missing.append(result.correlation_id or "?")
        reader.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert missing == []
    assert _rows(home) == 8 * 25
    connector.close()


def test_many_threads_share_commits(home: Path) -> None:
    """Group commit: threads waiting at the same moment are written by one transaction, not one each."""
    write_config(home, "email_vendor: file\n")
    connector = Connector()
    gateway = connector.email()
    gateway.send(EmailMessage(to=("warm@example.com",), subject="s", text="x"))
    writer = connector.log_writer
    batches: list[int] = []
    commit = writer._commit

    def counting(rows: list[tuple[object, ...]]) -> None:
        batches.append(len(rows))
        commit(rows)

    writer._commit = counting  # type: ignore[method-assign]
    start = threading.Barrier(16)

    def worker() -> None:
        start.wait()
        for i in range(20):
            gateway.send(EmailMessage(to=(f"u{i}@example.com",), subject="s", text="x"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(batches) == 16 * 20 == _rows(home) - 1
    assert len(batches) < 16 * 20 and max(batches) > 1
    connector.close()
