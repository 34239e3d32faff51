"""Many processes on one SQLite file: no lost rows, no "database is locked"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from connectorctl.store.db import StateDB
from tests.conftest import ROOT, write_config

_SENDER = """
import sys
from connectorctl.domain.messages import EmailMessage, SmsMessage
from connectorctl.gateway import Connector
n = int(sys.argv[1])
with Connector() as c:
    email, sms = c.email(), c.sms()
    for i in range(n):
        email.send(EmailMessage(to=(f"user{i}@example.com",), subject=f"proc {sys.argv[2]} #{i}", text="hello"))
        if i % 5 == 0:
            sms.send(SmsMessage(to="+14155550123", body=f"sms {i}"))
print("done")
"""


def test_four_processes_sending_at_once_lose_no_log_row(home: Path) -> None:
    write_config(home, "email_vendor: file\nsms_vendor: file\n")
    StateDB(home / "connectorctl.db").close()
    per_process = 60
    procs = [subprocess.Popen([sys.executable, "-c", _SENDER, str(per_process), str(n)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower() and "warning" not in err.lower(), err
    db = StateDB(home / "connectorctl.db")
    counts = dict(db.conn.execute("SELECT operation, count(*) FROM integration_logs GROUP BY operation").fetchall())
    assert counts == {"send_email": 4 * per_process, "send_sms": 4 * per_process // 5}
    assert db.conn.execute("SELECT count(DISTINCT id) FROM integration_logs").fetchone()[0] == 4 * per_process * 6 // 5
    assert len(list((home / "outbox").glob("*.eml"))) == 4 * per_process
    assert db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_forked_worker_keeps_logging_through_its_own_connection(home: Path) -> None:
    import os

    from connectorctl.domain.messages import EmailMessage
    from connectorctl.gateway import Connector

    write_config(home, "email_vendor: file\n")
    connector = Connector()
    message = EmailMessage(to=("a@example.com",), subject="before fork", text="t")
    connector.email().send(message)  # parent has a connection and a running writer thread
    pid = os.fork()
    if pid == 0:  # child: send and exit through the normal shutdown path
        code = 0
        try:
            child = connector.email().send(EmailMessage(to=("b@example.com",), subject="in child", text="t"))
            connector.flush()
            code = 0 if child.ok else 3
        except BaseException:  # noqa: BLE001
            code = 4
        finally:
            connector.close()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    connector.flush()
    subjects = [r[0] for r in connector.db.conn.execute("SELECT request_data FROM integration_logs ORDER BY seq")]
    assert len(subjects) == 2 and any("in child" in s for s in subjects) and any("before fork" in s for s in subjects)
    connector.close()
