"""``connectorctl serve``: the monitoring HTTP API on uvicorn.

Loopback by default.  Any other address needs a bearer token
(``$CONNECTORCTL_API_TOKEN`` or ``connectorctl creds`` entry ``connectorctl-api``);
without one the command refuses to start.  SIGTERM/SIGINT stop accepting new
connections, let in-flight requests finish (up to ``--graceful-timeout``) and
exit 0.  ``--workers`` runs uvicorn's own worker processes (``api/server.py``).
Starlette and uvicorn are imported inside the command so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from connectorctl.cli.output import state


def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; anything but loopback requires an API token.", metavar="HOST"
    ),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="TCP port (0 picks a free one).", metavar="PORT"),
    graceful_timeout: float = typer.Option(
        30.0,
        "--graceful-timeout",
        min=0.0,
        help="Seconds in-flight requests get to finish on SIGTERM.",
        metavar="SECONDS",
    ),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log", help="Log one line per request to stderr."),
    status_max_age: float = typer.Option(
        1.0,
        "--status-max-age",
        min=0.0,
        help="Seconds one shared /api/connector/status result is reused (0 = every request recomputes).",
        metavar="SECONDS",
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        envvar="WEB_CONCURRENCY",
        show_default="the number of CPUs, at most 4",
        metavar="N",
        help="uvicorn worker processes sharing the port.",
    ),
) -> None:
    """Serve the monitoring API (logs, metrics, health, status, Prometheus /metrics)."""
    from connectorctl.api.auth import TOKEN_ENV, TOKEN_SERVICE, is_loopback, resolve_token
    from connectorctl.cli.db import drain_spool_at_start
    from connectorctl.errors import ConfigurationError

    connector = state(ctx).connector()
    drain_spool_at_start(connector)
    token, source = resolve_token(connector)
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"refusing to listen on {host} without an API token" + ("" if source == "none" else f" ({source})"),
            hint=f"store one with `connectorctl creds set {TOKEN_SERVICE}` (field token) or set ${TOKEN_ENV}; "
            "or bind 127.0.0.1",
        )
    sock = _bind(host, port)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    auth = f"bearer token from {source}" if token else "none (loopback only)"
    sys.stderr.write(f"connectorctl API listening on http://{shown}:{bound[1]} (auth: {auth})\n")
    sys.stderr.flush()
    from connectorctl.api.server import ServeOptions, run

    options = ServeOptions(graceful_timeout, access_log, status_max_age, workers or min(4, os.cpu_count() or 1))
    settings = connector.settings
    connector.close()  # each worker opens its own
    try:
        run(settings, sock, token, options)
    finally:
        sock.close()


def _bind(host: str, port: int) -> Any:
    import socket

    from connectorctl.errors import ConfigurationError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # accept (queue) connections from now on, before uvicorn's loop starts
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve host {host!r} ({exc.strerror})") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock
