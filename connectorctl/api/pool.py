"""Where the API's database reads run: worker threads, or worker processes at background CPU priority.

A read is a module-level function ``fn(db, settings, *args)`` (see
``api/reads.py``).  In a thread of the server process its Python half (row
conversion, JSON encoding) holds the GIL and the event loop waits for it: with
50 concurrent clients on a million-row log, ``/api/connector/status`` answered
from memory still took 60x its idle median.  ``serve`` therefore runs reads in
worker processes that drop their own CPU priority, so the event loop, which
answers the cheap requests, always gets a core.

The workers are driven straight from the event loop over a socket pair each
(length-prefixed pickles), not through ``ProcessPoolExecutor``: its manager and
feeder threads take the GIL from the event loop on every call, which at a few
thousand reads per second tripled the loop's tail latency.  A worker that dies
fails only the read it was running (HTTP 503) and is replaced.

Two lanes, so the status snapshot never queues behind a long read:

* ``heavy``: logs, metrics, the Prometheus fold (``processes`` workers);
* ``status``: the ``/api/connector/status`` recomputation (one worker).

Priorities: ``idle`` (Linux ``SCHED_IDLE``: a woken server preempts a worker at
once, and on a host whose CPUs are all busy with other work heavy reads wait
for a free moment), ``low`` (nice 10) or ``normal``.  Workers ignore SIGINT and
SIGTERM: a Ctrl-C reaches the whole process group, and the server ends them
itself once the requests in flight are done.

Embedded use and most tests run reads in threads (``processes=0``): the same
functions, the same results.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import pickle
import signal
import socket
import struct
from multiprocessing import get_context
from typing import Any, Callable, Literal, TypeVar

from connectorctl.errors import StateStoreError
from connectorctl.store.db import StateDB

log = logging.getLogger("connectorctl.api")
T = TypeVar("T")
Lane = Literal["heavy", "status"]
PRIORITIES = ("idle", "low", "normal")
_HEADER = struct.Struct("!Q")


def lower_priority(priority: str) -> None:
    """Best effort: a platform or sandbox that refuses leaves the worker at normal priority."""
    try:
        if priority == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif priority in ("idle", "low"):
            os.nice(10)
    except OSError:
        pass


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, missing = [], size
    while missing:
        chunk = sock.recv(min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def _frame(obj: Any) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _worker_main(sock: socket.socket, db_path: str, settings: Any, priority: str) -> None:
    """A worker process: answer ``(fn, args)`` frames with ``(ok, value)`` frames until the server hangs up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lower_priority(priority)
    db = StateDB(db_path, migrate=False)
    while True:
        header = _recv_exactly(sock, _HEADER.size)
        payload = header and _recv_exactly(sock, _HEADER.unpack(header)[0])
        if not payload:
            return
        try:
            fn, args = pickle.loads(payload)
            reply = _frame((True, fn(db, settings, *args)))
        except Exception as exc:  # noqa: BLE001 - every failure travels back to the request that caused it
            try:
                reply = _frame((False, exc))
            except Exception:  # noqa: BLE001 - an exception that cannot be pickled: keep its type name
                reply = _frame((False, StateStoreError(f"read failed ({type(exc).__name__})")))
        sock.sendall(reply)


class _Worker:
    def __init__(self, lane: str, process: Any, sock: socket.socket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.lane = lane
        self.process = process
        self.sock = sock
        self.reader = reader
        self.writer = writer

    async def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        self.writer.write(_frame((fn, args)))
        (size,) = _HEADER.unpack(await self.reader.readexactly(_HEADER.size))
        return pickle.loads(await self.reader.readexactly(size))  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Hang up now (the transport alone would close the socket only on a later loop pass): the worker sees end of input."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
        self.writer.close()


class ReadPool:
    """Runs ``fn(db, settings, *args)`` off the event loop; see the module docstring for why processes."""

    def __init__(self, db_factory: Callable[[], StateDB], settings: Any, processes: int = 0, priority: str = "idle") -> None:
        if priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        self._db_factory = db_factory
        self._settings = settings
        self.processes = processes
        self.priority = priority
        self._idle: dict[str, asyncio.Queue[_Worker]] = {}
        self._workers: set[_Worker] = set()
        self._limiters: dict[str, Any] = {}

    async def start(self) -> None:
        """Spawn the workers now, so the first requests do not pay for it."""
        if not self.processes or self._idle:
            return
        sizes = {"heavy": self.processes, "status": 1}
        try:
            for lane, size in sizes.items():
                self._idle[lane] = asyncio.Queue()
                for _ in range(size):
                    await self._spawn(lane)
        except OSError as exc:  # out of processes or memory: serve anyway, from threads
            self.close()
            log.warning("could not start read worker processes (%s); reading in threads instead", exc)

    async def _spawn(self, lane: str) -> None:
        # The status lane needs ~1% of a core but must never starve: pollers would wait for it.
        priority = self.priority if lane == "heavy" else "normal"
        ours, theirs = socket.socketpair()
        process = get_context("spawn").Process(  # spawn: never fork a process that runs an event loop
            target=_worker_main, args=(theirs, str(self._db_factory().path), self._settings, priority),
            name=f"connectorctl-read-{lane}", daemon=True,
        )
        await asyncio.to_thread(process.start)
        theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = _Worker(lane, process, ours, reader, writer)
        self._workers.add(worker)
        self._idle[lane].put_nowait(worker)

    async def __call__(self, fn: Callable[..., T], *args: Any, lane: Lane = "heavy") -> T:
        if not self._idle:
            return await self._in_thread(lane, functools.partial(fn, self._db_factory(), self._settings, *args))
        # Shielded: a cancelled request must not leave a reply unread on the worker's socket.
        ok, value = await asyncio.shield(self._exchange(lane, fn, args))
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    async def _exchange(self, lane: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[bool, Any]:
        if not any(w.lane == lane for w in self._workers):  # none could be restarted: keep answering
            return True, await self._in_thread(lane, functools.partial(fn, self._db_factory(), self._settings, *args))
        worker = await self._idle[lane].get()
        try:
            result = await worker.call(fn, args)
        except (OSError, EOFError, asyncio.IncompleteReadError):
            self._retire(worker)
            try:
                await self._spawn(lane)
            except OSError as exc:
                log.error("could not restart a read worker (%s); %s reads run in threads now", exc, lane)
            return False, StateStoreError("a database read worker exited unexpectedly; it was restarted, retry the request")
        except Exception:
            self._idle[lane].put_nowait(worker)  # a reply that would not unpickle was still read whole: in step
            raise
        except BaseException:
            self._retire(worker)  # interrupted mid-reply (loop shutting down): out of step for good
            raise
        self._idle[lane].put_nowait(worker)
        return result

    def _retire(self, worker: "_Worker") -> None:
        self._workers.discard(worker)
        worker.stop()

    async def _in_thread(self, lane: str, call: Callable[[], T]) -> T:
        import anyio
        import anyio.to_thread

        limiter = self._limiters.get(lane)
        if limiter is None:
            limiter = self._limiters[lane] = anyio.CapacityLimiter(4 if lane == "heavy" else 1)
        return await anyio.to_thread.run_sync(call, limiter=limiter)

    def close(self) -> None:
        """Hang up on every worker (each exits at end of input) and reap them."""
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
        self._workers.clear()
        self._idle.clear()
