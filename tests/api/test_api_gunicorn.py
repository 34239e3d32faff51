"""The gunicorn deployment docs/api.md documents, run as documented: it answers /status and /metrics and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from connectorctl.gateway import Connector
from connectorctl.store.logs import INSERT_LOG
from tests.api.conftest import SEED, make_settings
from tests.api.test_api_process import all_gone, children, wait_for
from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_gunicorn_with_uvicorn_workers_serves_status_and_metrics(home: Path, tmp_path: Path) -> None:
    connector = Connector(make_settings(home))
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, SEED)
    connector.close()
    token = "gunicorn-token-77aa"
    env = dict(os.environ, PYTHONPATH=str(ROOT), CONNECTORCTL_HOME=str(home), CONNECTORCTL_API_TOKEN=token,
               HOME=str(tmp_path))  # gunicorn keeps a control socket under $HOME
    # The command of docs/api.md, on a free port.
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "-w", "2", "-b", "127.0.0.1:0",
         "connectorctl.api:from_environment()"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )
    try:
        assert proc.stderr is not None
        port = wait_for(lambda: re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", proc.stderr.readline()))  # type: ignore[union-attr]
        with httpx.Client(base_url=f"http://127.0.0.1:{port.group(1)}", timeout=20,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            status = http.get("/api/connector/status")
            assert status.status_code == 200
            assert status.json()["services"]["file"]["circuit_state"] == "closed"
            metrics = http.get("/metrics")
            assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
            lines = metrics.text.splitlines()
            assert 'connectorctl_calls_total{service="file",status="success"} 9.0' in lines
            assert 'connectorctl_calls_total{service="file",status="failed"} 1.0' in lines
            assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        workers = wait_for(lambda: kids if len(kids := children(proc.pid)) == 2 else None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
        assert all_gone(workers)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
