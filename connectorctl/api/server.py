"""Running the API on uvicorn, in this process or in uvicorn's own worker processes.

``connectorctl serve`` binds the socket itself (so ``--port 0`` can report the
port it got, and a bad address is one config error), then hands it to uvicorn:
``uvicorn.Server`` for one worker, uvicorn's multiprocess supervisor for more
(it restarts a worker that dies, and ``SIGHUP`` / ``SIGTTIN`` / ``SIGTTOU`` work
as uvicorn documents).  Each worker builds its own app and ``Connector`` from
the settings and token it is handed at spawn time (never through argv or the
environment), so the workers share only the socket and the SQLite file.

The same app runs under any ASGI server through :func:`connectorctl.api.from_environment`.
"""

from __future__ import annotations

import functools
import math
import signal
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s"
# dictConfig, because uvicorn applies it again in every worker process it spawns.
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LOG_FORMAT}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": "INFO"},
}


@dataclass(frozen=True)
class ServeOptions:
    graceful_timeout: float = 30.0
    access_log: bool = True
    status_max_age: float = 1.0
    workers: int = 1


def build_app(settings: Any, token: str | None, status_max_age: float) -> Any:
    """The app of one worker: its own Connector, closed when the worker shuts down."""
    from connectorctl.api.app import create_app
    from connectorctl.gateway import Connector

    return create_app(Connector(settings), token=token, status_fresh_seconds=status_max_age, close_connector=True)


def run(settings: Any, sock: socket.socket, token: str | None, options: ServeOptions) -> None:
    """Serve on ``sock`` until SIGTERM/SIGINT; in-flight requests get ``graceful_timeout`` seconds to finish."""
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        functools.partial(build_app, settings, token, options.status_max_age),
        factory=True,
        workers=options.workers,
        log_config=LOG_CONFIG,
        access_log=options.access_log,
        timeout_graceful_shutdown=math.ceil(options.graceful_timeout),
        lifespan="on",
        server_header=False,
        proxy_headers=False,
    )
    # uvicorn re-raises the signal that stopped it once it is done; with these handlers
    # in place a graceful stop ends with exit code 0 instead of death by signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: None)
    if options.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
