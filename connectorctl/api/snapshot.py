"""A stale-while-revalidate snapshot for endpoints that many pollers hit.

``GET /api/connector/status`` is what load balancers, dashboards and alerting
poll, often dozens at once.  Recomputing it per request would make its latency
depend on everything else the server is doing (a threadpool hop and the GIL).
Instead one computation is shared:

* younger than ``fresh_seconds``: served from memory;
* older, but younger than ``stale_seconds``: served from memory at once while
  one background refresh runs (single flight);
* no snapshot or older than ``stale_seconds``: the request waits for a refresh
  (concurrent requests share it).

The body carries its own ``timestamp``, so a client can see its age.  With
``fresh_seconds=0`` every request recomputes (concurrent ones still share).
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable, Generic, TypeVar

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(
        self,
        compute: Callable[[], Awaitable[T]],
        *,
        fresh_seconds: float = 1.0,
        stale_seconds: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self.fresh_seconds = fresh_seconds
        self.stale_seconds = max(stale_seconds, fresh_seconds)
        self._monotonic = monotonic
        self._value: T | None = None
        self._taken_at = float("-inf")
        self._running: asyncio.Task[T] | None = None

    async def get(self) -> T:
        age = self._monotonic() - self._taken_at
        if self._value is not None and age < self.fresh_seconds:
            return self._value
        refresh = self._refresh()
        if self._value is not None and age < self.stale_seconds:
            return self._value  # the refresh continues in the background
        return await asyncio.shield(refresh)

    def _refresh(self) -> "asyncio.Task[T]":
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())
            self._running.add_done_callback(_consume)
        return self._running

    async def _run(self) -> T:
        try:
            value = await self._compute()
            self._value, self._taken_at = value, self._monotonic()
            return value
        finally:
            self._running = None


def _consume(task: "asyncio.Task[object]") -> None:
    """A background refresh that failed is reported to whoever waits next, not as an asyncio warning."""
    if not task.cancelled():
        task.exception()
