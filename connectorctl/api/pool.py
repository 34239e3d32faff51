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

Two lanes, so what pollers and load balancers wait for never queues behind a long read:

* ``heavy``: logs, metrics, the Prometheus fold (``processes`` workers);
* ``quick``: the status snapshot and the health check (one worker at normal
  priority).  In a thread, the health check's hand-overs of the GIL cost the
  event loop more than the check itself.

Priorities: ``idle`` (Linux ``SCHED_IDLE``: a woken server preempts a worker,
almost at once, see ``GIVE_WAY_EVERY``; on a host whose CPUs are all busy with
other work heavy reads wait for a free moment), ``low`` (nice 10) or ``normal``.  Workers ignore SIGINT and
SIGTERM: a Ctrl-C reaches the whole process group, and the server ends them
itself once the requests in flight are done.

Embedded use and most tests run reads in threads (``processes=0``): the same
functions, the same results.
"""

from __future__ import annotations

import asyncio
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
Lane = Literal["heavy", "quick"]
PRIORITIES = ("idle", "low", "normal")
_HEADER = struct.Struct("!Q")
# Linux's EEVDF scheduler hands a low-priority task that waited a lot (a busy read
# worker) a lag credit it may spend before a woken normal task runs: up to a
# tick (4 ms at HZ=250) during which the event loop waits, whatever SCHED_IDLE
# promises.  Every ~5,000 SQLite steps (~70 us of a query) the worker yields
# (each yield spends the credit down); with nobody waiting a yield returns at
# once.  Measured with `perf sched`: server waits over 1 ms fell from 46 to 16
# in 5 s of the load benchmark.
GIVE_WAY_EVERY = 5000


def lower_priority(priority: str) -> None:
    """Best effort: a platform or sandbox that refuses leaves the worker at normal priority."""
    try:
        if priority == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        elif priority in ("idle", "low"):
            os.nice(10)
    except OSError:
        pass


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def start_quietly(process: Any) -> None:
    """Start a spawned process with SIGINT/SIGTERM blocked until its target unblocks them.

    A terminal's Ctrl-C reaches the whole process group; a child still importing
    its modules would die of it with a KeyboardInterrupt traceback.  A blocked
    mask, unlike a Python handler, survives the exec.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _give_way() -> int:
    """SQLite's progress handler in a background worker: let a woken server run (see GIVE_WAY_EVERY)."""
    for _ in range(3):
        os.sched_yield()
    return 0  # go on with the query


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
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked since birth (start_quietly): drop what came
    lower_priority(priority)
    db = StateDB(db_path, migrate=False)
    if priority != "normal":
        db.conn.set_progress_handler(_give_way, GIVE_WAY_EVERY)
    try:
        _answer(sock, db, settings)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server hung up mid-read (it is shutting down): nobody wants the answer


def _answer(sock: socket.socket, db: StateDB, settings: Any) -> None:
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


class _Worker(asyncio.Protocol):
    """Our end of one worker's socket pair: one read in flight, its reply resolved in the callback that completes it.

    No task, stream reader or lock per read: each of those is another event-loop
    pass that a poller's request would queue behind.  The reply is always read
    whole, even for a caller that gave up (cancelled), so the next read gets its
    own answer; only then does the worker go back to the idle queue.
    """

    def __init__(self, lane: str, process: Any, sock: socket.socket, idle: "asyncio.Queue[_Worker]") -> None:
        self.lane = lane
        self.process = process
        self.sock = sock
        self.idle = idle
        self.transport: asyncio.Transport | None = None
        self.reply: asyncio.Future[tuple[bool, Any]] | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._expected: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> "asyncio.Future[tuple[bool, Any]]":
        if self.transport is None or self.transport.is_closing():
            raise EOFError("read worker is gone")
        self.reply = asyncio.get_running_loop().create_future()
        self.transport.write(_frame((fn, args)))
        return self.reply

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._expected is None and self._buffered >= _HEADER.size:
            joined = b"".join(self._chunks)
            (size,) = _HEADER.unpack_from(joined)
            self._chunks, self._buffered, self._expected = [joined[_HEADER.size:]], len(joined) - _HEADER.size, size
        if self._expected is None or self._buffered < self._expected:
            return
        payload = b"".join(self._chunks)  # a worker sends one reply per request: nothing follows it
        self._chunks, self._buffered, self._expected = [], 0, None
        try:
            result = pickle.loads(payload)
        except Exception as exc:  # noqa: BLE001 - still in step: the reply was read whole
            result = (False, StateStoreError(f"read reply unreadable ({type(exc).__name__})"))
        reply, self.reply = self.reply, None
        self.idle.put_nowait(self)
        if reply is not None and not reply.done():
            reply.set_result(result)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(EOFError("read worker hung up"))

    def stop(self) -> None:
        """Hang up now (the transport alone would close the socket only on a later loop pass): the worker sees end of input."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
        if self.transport is not None:
            self.transport.close()


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
        self.closed = False

    async def start(self) -> None:
        """Spawn the workers now, so the first requests do not pay for it."""
        if not self.processes or self._idle:
            return
        sizes = {"heavy": self.processes, "quick": 1}
        try:
            for lane, size in sizes.items():
                self._idle[lane] = asyncio.Queue()
                for _ in range(size):
                    await self._spawn(lane)
        except OSError as exc:  # out of processes or memory: serve anyway, from threads
            self.close()
            log.warning("could not start read worker processes (%s); reading in threads instead", exc)

    async def _spawn(self, lane: str) -> None:
        # The quick lane needs ~1% of a core but must never starve: pollers and load balancers wait for it.
        priority = self.priority if lane == "heavy" else "normal"
        ours, theirs = socket.socketpair()
        process = get_context("spawn").Process(  # spawn: never fork a process that runs an event loop
            target=_worker_main, args=(theirs, str(self._db_factory().path), self._settings, priority),
            name=f"connectorctl-read-{lane}", daemon=True,
        )
        await asyncio.to_thread(start_quietly, process)
        theirs.close()
        worker = _Worker(lane, process, ours, self._idle[lane])
        await asyncio.get_running_loop().create_unix_connection(lambda: worker, sock=ours)
        self._workers.add(worker)
        self._idle[lane].put_nowait(worker)

    async def __call__(self, fn: Callable[..., T], *args: Any, lane: Lane = "heavy") -> T:
        if not any(w.lane == lane for w in self._workers):  # threads: embedded use, or no worker could be (re)started
            return await self._in_thread(lane, lambda: fn(self._db_factory(), self._settings, *args))
        worker = await self._idle[lane].get()
        try:
            ok, value = await worker.call(fn, args)
        except EOFError:
            self._retire(worker)
            if self.closed:
                raise StateStoreError("the server is shutting down") from None
            try:
                await self._spawn(lane)
            except OSError as exc:
                log.error("could not restart a read worker (%s); %s reads run in threads now", exc, lane)
            raise StateStoreError("a database read worker exited unexpectedly; it was restarted, retry the request") from None
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    def _retire(self, worker: "_Worker") -> None:
        self._workers.discard(worker)
        worker.stop()

    async def _in_thread(self, lane: str, call: Callable[[], T]) -> T:
        import anyio
        import anyio.to_thread

        limiter = self._limiters.get(lane)
        if limiter is None:
            limiter = self._limiters[lane] = anyio.CapacityLimiter(4 if lane == "heavy" else 2)
        return await anyio.to_thread.run_sync(call, limiter=limiter)

    def close(self) -> None:
        """Hang up on every worker (each exits at end of input) and reap them."""
        self.closed = True
        for worker in self._workers:
            worker.stop()
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
        self._workers.clear()
        self._idle.clear()
