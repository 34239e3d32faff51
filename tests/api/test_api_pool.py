"""Reads in worker processes (what ``serve`` uses): same answers as threads, errors intact, workers replaced, reaped."""

from __future__ import annotations

import asyncio
import os
from typing import Any, Awaitable, Callable

import pytest

from connectorctl.api.pool import ReadPool
from connectorctl.errors import StateStoreError
from connectorctl.gateway import Connector
from tests.api import readfns

pytestmark = pytest.mark.slow  # spawning worker processes costs ~0.3 s a test


def with_pool(connector: Connector, scenario: Callable[[ReadPool], Awaitable[Any]], processes: int = 1, priority: str = "idle") -> Any:
    async def run() -> Any:
        pool = ReadPool(lambda: connector.db, connector.settings, processes, priority)
        await pool.start()
        try:
            return await scenario(pool)
        finally:
            pool.close()

    return asyncio.run(run())


URLS = [
    "/api/connector/logs?service=fake&limit=2",
    "/api/connector/logs?status=failed",
    "/api/connector/logs?tenant_id=t1&date_from=2027-01-14T00:00:00Z",
    "/api/connector/logs?service=nosuch",
    "/api/connector/metrics/fake?from=-30days",
    "/api/connector/metrics/nosuch",
    "/api/connector/status",
    "/api/connector/health",
]


def test_worker_processes_answer_exactly_like_threads(connector: Connector) -> None:
    from starlette.testclient import TestClient

    from connectorctl.api import create_app

    answers = []
    for processes in (0, 2):
        with TestClient(create_app(connector, read_processes=processes), raise_server_exceptions=False) as client:
            answers.append([(r.status_code, r.json()) for r in map(client.get, URLS)])
            answers[-1].append((200, client.get("/metrics").text))
    threads, processes = answers
    assert processes == threads
    assert threads[3][0] == 404 and threads[3][1]["error"]["code"] == "not_found" and "hint" in threads[3][1]["error"]


def test_prometheus_counters_keep_counting_across_workers(connector: Connector) -> None:
    """The running totals live in the server; each scrape may run in a different worker."""
    from starlette.testclient import TestClient

    from connectorctl.api import create_app
    from connectorctl.store.logs import INSERT_LOG
    from tests.api.conftest import log_row, rid
    from datetime import timedelta

    line = 'connectorctl_calls_total{service="fake",status="success"}'
    with TestClient(create_app(connector, read_processes=2)) as client:
        counts = []
        for n in range(4):
            with connector.db.write() as c:
                c.execute(INSERT_LOG, log_row(rid(900 + n), "fake", "success", 10, timedelta(seconds=1)))
            text = client.get("/metrics").text
            counts.append(float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1]))
    assert counts == [4.0, 5.0, 6.0, 7.0]


def test_an_error_raised_in_a_worker_arrives_with_its_type_message_and_hint(connector: Connector) -> None:
    async def scenario(pool: ReadPool) -> None:
        with pytest.raises(StateStoreError) as raised:
            await pool(readfns.fail, "database is locked", "retry later")
        assert (raised.value.message, raised.value.hint) == ("database is locked", "retry later")
        with pytest.raises(StateStoreError, match=r"read failed \(Unpicklable\)"):
            await pool(readfns.fail_unpicklably)
        assert await pool(readfns.echo, "still in step") == "still in step"

    with_pool(connector, scenario)


def test_a_worker_that_dies_fails_one_read_and_is_replaced(connector: Connector) -> None:
    async def scenario(pool: ReadPool) -> None:
        first = await pool(readfns.pid)
        with pytest.raises(StateStoreError, match="read worker exited unexpectedly"):
            await pool(readfns.die)
        second = await pool(readfns.pid)
        assert second != first and await pool(readfns.echo, 42) == 42

    with_pool(connector, scenario)


def test_a_cancelled_read_does_not_hand_its_reply_to_the_next_one(connector: Connector) -> None:
    async def scenario(pool: ReadPool) -> None:
        slow = asyncio.ensure_future(pool(readfns.slow_echo, 0.3, "first"))
        await asyncio.sleep(0.05)
        slow.cancel()
        assert await pool(readfns.echo, "second") == "second"  # waits for the worker, then gets its own reply

    with_pool(connector, scenario)


@pytest.mark.parametrize(("priority", "heavy"), [("idle", (os.SCHED_IDLE, 0)), ("low", (os.SCHED_OTHER, 10)), ("normal", (os.SCHED_OTHER, 0))])
def test_heavy_reads_run_at_the_requested_priority_and_quick_ones_at_normal(connector: Connector, priority: str, heavy: tuple[int, int]) -> None:
    async def scenario(pool: ReadPool) -> tuple[Any, Any]:
        return await pool(readfns.scheduling), await pool(readfns.scheduling, lane="quick")

    assert with_pool(connector, scenario, priority=priority) == (heavy, (os.SCHED_OTHER, 0))


def test_close_reaps_every_worker(connector: Connector) -> None:
    async def scenario(pool: ReadPool) -> list[Any]:
        await pool(readfns.echo, 1)
        return [w.process for w in pool._workers]

    processes = with_pool(connector, scenario, processes=2)
    assert len(processes) == 3  # two heavy, one quick
    assert not any(p.is_alive() for p in processes) and all(p.exitcode == 0 for p in processes)


def test_an_unknown_priority_is_refused() -> None:
    with pytest.raises(ValueError, match="idle, low, normal"):
        ReadPool(lambda: None, None, 1, "turbo")  # type: ignore[arg-type,return-value]


def test_when_no_worker_can_be_started_reads_fall_back_to_threads(connector: Connector, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from multiprocessing.context import SpawnProcess

    def refuse(self: Any) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(SpawnProcess, "start", refuse)

    async def scenario(pool: ReadPool) -> int:
        return await pool(readfns.pid)

    assert with_pool(connector, scenario) == os.getpid()
    assert "could not start read worker processes" in caplog.text


def test_when_a_dead_worker_cannot_be_replaced_reads_go_on_in_threads(connector: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
    from multiprocessing.context import SpawnProcess

    async def scenario(pool: ReadPool) -> tuple[int, int]:
        worker_pid = await pool(readfns.pid)

        def refuse(self: Any) -> None:
            raise OSError(11, "Resource temporarily unavailable")

        monkeypatch.setattr(SpawnProcess, "start", refuse)
        with pytest.raises(StateStoreError):
            await pool(readfns.die)
        return worker_pid, await pool(readfns.pid)

    worker_pid, after = with_pool(connector, scenario)
    assert worker_pid != os.getpid() and after == os.getpid()
