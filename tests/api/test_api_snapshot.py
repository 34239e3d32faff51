"""The shared status snapshot: fresh from memory, stale-while-revalidate, shared refreshes, errors surface."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectorctl.api.snapshot import Snapshot
from connectorctl.errors import StateStoreError


class Source:
    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self) -> int:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise StateStoreError("database is corrupt")
        return self.calls


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_fresh_value_is_reused_and_recomputed_once_stale() -> None:
    now = [0.0]
    source = Source()

    async def scenario() -> list[int]:
        snap = Snapshot(source, fresh_seconds=1.0, stale_seconds=2.0, monotonic=lambda: now[0])
        seen = [await snap.get(), await snap.get()]
        now[0] = 1.5  # stale but usable: served at once, refreshed in the background
        seen.append(await snap.get())
        await asyncio.sleep(0)
        seen.append(await snap.get())
        now[0] = 10.0  # too old: the caller waits for a new value
        seen.append(await snap.get())
        return seen

    assert run(scenario()) == [1, 1, 1, 2, 3]
    assert source.calls == 3


def test_concurrent_callers_share_one_computation() -> None:
    source = Source()

    async def scenario() -> list[int]:
        source.gate = asyncio.Event()
        snap = Snapshot(source, fresh_seconds=0.0, stale_seconds=0.0)
        waiting = [asyncio.ensure_future(snap.get()) for _ in range(20)]
        await asyncio.sleep(0)
        source.gate.set()
        return list(await asyncio.gather(*waiting))

    assert run(scenario()) == [1] * 20
    assert source.calls == 1


def test_a_failed_refresh_reaches_the_waiting_caller_and_then_recovers() -> None:
    source = Source()

    async def scenario() -> int:
        snap = Snapshot(source, fresh_seconds=0.0, stale_seconds=0.0)
        source.fail = True
        with pytest.raises(StateStoreError):
            await snap.get()
        source.fail = False
        return await snap.get()

    assert run(scenario()) == 2
