"""Running the API: one uvicorn server per process, ``processes`` of them on one listening socket.

One event loop answers every request of its process, and a poller's request
waits behind whatever that loop is doing (parsing, routing, writing a 45 KB
log page).  With 50 busy clients, two loops sharing the socket cut the p99 of
``/api/connector/status`` by about a third against one loop (see the load
benchmark in docs/api.md).  Every process is a full server with its own read
workers; they share only the socket and the SQLite file, so nothing they
answer depends on which one a connection landed on (their Prometheus counters
too: ``store/totals.py``).

The process started from the command line serves too and owns the others
(``spawn``ed, so nothing forked runs an event loop): a SIGTERM or Ctrl-C it
receives is passed on as one SIGTERM (the others ignore a Ctrl-C of their own),
each finishes its in-flight requests, and it exits only after the last one has.
Until its start-up is done a process holds stop signals back: uvicorn stopped
half-way through start-up would skip the app's shutdown.  One that exits by itself is reported at once;
the rest keep serving.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import uvicorn

from connectorctl.api.pool import STOP_SIGNALS, start_quietly

log = logging.getLogger("connectorctl.api")


@dataclass(frozen=True)
class ServeOptions:
    graceful_timeout: float = 30.0
    access_log: bool = True
    status_max_age: float = 1.0
    read_workers: int = 1
    read_priority: str = "idle"


def run(connector: Any, sock: socket.socket, token: str | None, options: ServeOptions, processes: int = 1) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT, in this process and ``processes - 1`` others."""
    _log_to_stderr()
    context = get_context("spawn")
    others = [
        # The token travels in the spawn pipe, never in argv or the environment.
        context.Process(target=_serve_child, args=(connector.settings, sock, token, options), name=f"connectorctl-serve-{n}")
        for n in range(1, processes)
    ]
    for process in others:
        start_quietly(process)
    try:
        _serve(connector, sock, token, options, others)
    finally:
        _stop(others, options.graceful_timeout)


def _serve_child(settings: Any, sock: socket.socket, token: str | None, options: ServeOptions) -> None:
    from connectorctl.gateway import Connector

    _log_to_stderr()
    connector = Connector(settings)
    try:
        _serve(connector, sock, token, options, [], owned=True)
    finally:
        connector.close()


def _log_to_stderr() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")


def _serve(connector: Any, sock: socket.socket, token: str | None, options: ServeOptions, others: list[Any], owned: bool = False) -> None:
    from connectorctl.api import create_app

    app = create_app(connector, token=token, status_fresh_seconds=options.status_max_age,
                     read_processes=options.read_workers, read_priority=options.read_priority)
    config = uvicorn.Config(
        app, log_config=None, access_log=options.access_log, timeout_graceful_shutdown=options.graceful_timeout,
        lifespan="on", server_header=False, proxy_headers=False,
    )
    # uvicorn re-raises the signal that stopped it once it is done; these handlers
    # receive it, so a graceful stop ends with exit code 0 instead of death by signal.
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, frame: None)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # until start-up is done, see _Server.startup
    try:
        _Server(config, others, owned).run(sockets=[sock])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Server(uvicorn.Server):
    """uvicorn's server, passing a stop signal on to the other server processes and watching them."""

    def __init__(self, config: uvicorn.Config, others: list[Any], owned: bool) -> None:
        super().__init__(config)
        self.others = others
        self.owned = owned  # started by another server process, which passes stop signals on

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.owned and sig == signal.SIGINT:
            # A terminal's Ctrl-C reaches every process of the group, and the owner passes a SIGTERM on
            # as well: taken together uvicorn would read them as a second Ctrl-C and drop in-flight work.
            return
        for process in self.others:
            if process.is_alive():
                # SIGTERM whatever arrived here: a second SIGINT would make uvicorn drop in-flight requests.
                os.kill(process.pid, signal.SIGTERM)
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        loop = asyncio.get_running_loop()
        for process in self.others:
            loop.add_reader(process.sentinel, self._exited, loop, process)
        await super().startup(sockets=sockets)
        # Stop signals were held back until now: uvicorn stopped half-way through start-up
        # skips the app's shutdown (read workers, logs a CancelledError); now it is a normal stop.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _exited(self, loop: asyncio.AbstractEventLoop, process: Any) -> None:
        loop.remove_reader(process.sentinel)
        process.join()
        if not self.should_exit:
            log.error("server process %s exited unexpectedly (exit code %s); the others keep serving", process.pid, process.exitcode)


def _stop(others: list[Any], graceful_timeout: float) -> None:
    """After this process finished: wait for the others to finish theirs too."""
    for process in others:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)  # again: one still starting up when the first came lost it
    for process in others:
        process.join(timeout=graceful_timeout + 5)
        if process.is_alive():
            process.kill()
            process.join()
