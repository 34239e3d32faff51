"""Outbox workers as real processes on one installation: many workers never send a message twice,
SIGTERM stops them cleanly, and kill -9 loses nothing.  The vendor is a local fake Postmark (it can be
asked by our key) and the file sink (it cannot); ground truth is what they received, not our own state."""

from __future__ import annotations

import email
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
from fake_postmark import TOKEN, FakePostmark

from connectorctl.domain.messages import EmailMessage
from connectorctl.gateway import Connector
from connectorctl.outbox.store import OutboxStatus, OutboxStore, depth

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def configure(home: Path, fake: FakePostmark, *, lease_seconds: float) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(
        "email_vendor: postmark\n"
        "vendors:\n"
        f"  postmark: {{base_url: '{fake.url}', from_email: shop@example.com, timeout_seconds: 5, credentials: {{api_key: 'env:PM_TOKEN'}}}}\n"
        "retry_policy: {max_attempts: 2, initial_delay_ms: 1, max_delay_ms: 2}\n"
        "circuit_breaker: {failure_threshold: 1000, timeout_seconds: 0.2}\n"
        f"outbox: {{lease_seconds: {lease_seconds}, backoff_initial_seconds: 0.01, backoff_max_seconds: 0.05, poll_seconds: 0.1, "
        "check_delay_seconds: 0}\n")


def worker(home: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONNECTORCTL_HOME": str(home), "PM_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "connectorctl", "outbox", "work", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def enqueue(connector: Connector, count: int, vendors: tuple[str, ...] = ("postmark",)) -> list[str]:
    email_gateway = connector.email(vendors)
    return [email_gateway.enqueue(EmailMessage(to=(f"c{n}.{vendors[0]}@example.com",), subject=f"Invoice {n}", text="Attached.")).id
            for n in range(count)]


def wait_until_drained(connector: Connector, timeout: float) -> None:
    deadline = time.time() + timeout
    while depth(connector.db, time.time())["depth"] and time.time() < deadline:
        time.sleep(0.1)


@pytest.fixture
def postmark() -> Iterator[FakePostmark]:
    with FakePostmark() as fake:
        yield fake


def test_four_worker_processes_deliver_2000_messages_exactly_once_through_30_percent_failures(home: Path, postmark: FakePostmark) -> None:
    configure(home, postmark, lease_seconds=30)
    with Connector() as connector:
        ids = enqueue(connector, 2000)
        postmark.flaky = 0.3  # 503, 500 and 429 at random, the message untouched
        workers = [worker(home, "--concurrency", "2") for _ in range(4)]
        try:
            wait_until_drained(connector, 120)
        finally:
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(20) for proc in workers]
        assert codes == [0, 0, 0, 0], [proc.stderr.read() for proc in workers if proc.stderr]  # SIGTERM is a clean stop
        delivered = Counter(m["Metadata"]["connectorctl_key"] for m in postmark.accepted)
        assert set(delivered) == set(ids) and max(delivered.values()) == 1  # every message, exactly once, counted at the vendor
        assert sum(1 for s in postmark.statuses if s >= 400) > 500  # the failures really happened
        counts = depth(connector.db, time.time())["by_status"]
        assert counts["sending"] == counts["dead"] == counts["uncertain"] == 0


def test_kill_9_of_workers_loses_nothing_and_duplicates_nothing_a_vendor_can_be_asked_about(home: Path, postmark: FakePostmark) -> None:
    """Ten workers killed with SIGKILL mid-drain, then one clean run.  Postmark is asked about every
    message a dead worker held: none is sent twice.  The file sink cannot be asked: such a message is either
    delivered once or left ``uncertain`` for an operator, and only messages in flight at a kill can be uncertain."""
    configure(home, postmark, lease_seconds=1.2)
    outbox_files = home / "outbox"
    with Connector() as connector:
        asked = enqueue(connector, 150)
        unasked = enqueue(connector, 150, ("file",))
        rng = random.Random(9)
        concurrency, kills = 4, 0

        def received() -> int:
            return len(postmark.accepted) + len(list(outbox_files.glob("*.eml")))

        for _ in range(5):  # two workers per round, each killed at its own moment: ten kills
            procs = [worker(home, "--concurrency", str(concurrency)) for _ in range(2)]
            for proc in procs:
                target, deadline = received() + rng.randint(5, 20), time.time() + 20
                while received() < target and time.time() < deadline:
                    time.sleep(0.005)
                proc.kill()
                proc.wait()
                kills += 1
        time.sleep(1.3)  # every lease a killed worker held has run out
        final = worker(home, "--once", "--concurrency", "8")
        assert final.wait(60) == 0, final.stderr.read() if final.stderr else ""
        store = OutboxStore(connector.db)
        by_id = {m.id: m for m in store.list(limit=1000)}
        delivered = Counter(m["Metadata"]["connectorctl_key"] for m in postmark.accepted)
        assert set(delivered) == set(asked) and max(delivered.values()) == 1  # askable: all delivered, none twice
        assert all(by_id[i].status is OutboxStatus.SENT for i in asked)
        files = Counter(email.message_from_bytes(p.read_bytes())["To"] for p in outbox_files.glob("*.eml"))
        assert max(files.values()) == 1  # never sent twice, even where the vendor cannot be asked
        uncertain = [i for i in unasked if by_id[i].status is OutboxStatus.UNCERTAIN]
        assert all(by_id[i].status is OutboxStatus.SENT for i in unasked if i not in uncertain)  # nothing lost
        assert len(uncertain) <= kills * concurrency  # only what was in flight when a worker died
        assert sum(files.values()) >= len(unasked) - len(uncertain)
