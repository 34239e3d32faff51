"""`logs tail -f` as a real process: rows written by other processes (here, the test's own) appear, purge is survived,
Ctrl-C is clean."""

from __future__ import annotations

import json
import queue
import signal
import threading
from datetime import timedelta

from tests.ops.opsdata import Row, insert_rows, popen_cli, wait_for


class LineReader:
    """Collects a process's stdout lines on a thread, so the test can wait with a bound."""

    def __init__(self, proc) -> None:
        self.lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def next_rows(self, n: int, timeout: float = 20.0) -> list[dict]:
        return [json.loads(self.lines.get(timeout=timeout)) for _ in range(n)]


def test_follow_sees_other_processes_and_survives_purge(cli, db_path):
    old = insert_rows(db_path, [Row(timedelta(days=200 - i / 1000), service="beta") for i in range(300)])
    recent = insert_rows(db_path, [Row(timedelta(minutes=5)), Row(timedelta(minutes=1))])
    tail = popen_cli("logs", "tail", "-f", "-n", "2", "-o", "jsonl", "--interval", "0.05")
    reader = LineReader(tail)
    try:
        assert [r["id"] for r in reader.next_rows(2)] == recent

        sent = cli("send", "email", "--to", "ops@example.com", "--subject", "hello", "--body", "b", "--json")
        assert sent.exit_code == 0, sent.stderr
        row = reader.next_rows(1)[0]
        assert (row["service_name"], row["status"], row["correlation_id"]) == ("file", "success", json.loads(sent.stdout)["correlation_id"])

        purged = cli("logs", "purge", "--yes", "--days", "30", "--batch-size", "50", "--json")
        assert json.loads(purged.stdout)["deleted"] == len(old)
        sent_again = cli("send", "sms", "--to", "+14155550123", "-m", "after purge", "--json")
        assert sent_again.exit_code == 0, sent_again.stderr
        row = reader.next_rows(1)[0]
        assert (row["service_name"], row["operation"]) == ("file", "send_sms")
        assert reader.lines.empty()  # nothing was printed twice
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=20)
    assert tail.returncode == 0
    assert "Traceback" not in tail.stderr.read()


def test_follow_applies_filters_to_new_rows(db_path):
    insert_rows(db_path, [Row(timedelta(minutes=3))])
    tail = popen_cli("logs", "tail", "-f", "-n", "0", "--service", "beta", "--status", "failed", "-o", "jsonl", "--interval", "0.05")
    reader = LineReader(tail)
    try:
        assert "no service 'beta'" in tail.stderr.readline()  # nothing logged it yet: a possible typo is flagged
        assert "following" in tail.stderr.readline()  # the cursor is taken: rows from now on are new
        rows = [Row(timedelta(0), service="beta"), Row(timedelta(0), service="alpha", status="failed", http=503),
                Row(timedelta(0), service="beta", status="failed", http=500)]
        ids = insert_rows(db_path, rows)
        assert [r["id"] for r in reader.next_rows(1)] == [ids[2]]
        more = insert_rows(db_path, [Row(timedelta(0), service="beta", status="failed", http=502)])
        assert [r["id"] for r in reader.next_rows(1)] == more
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=20)
    assert tail.returncode == 0 and reader.lines.empty()
    assert "Traceback" not in tail.stderr.read()


def test_follow_table_output_and_clean_ctrl_c(db_path):
    insert_rows(db_path, [Row(timedelta(minutes=1), error="first row")])
    tail = popen_cli("logs", "tail", "-f", "--interval", "0.05")
    reader = LineReader(tail)
    try:
        wait_for(lambda: "first row" in "".join(list(reader.lines.queue)))
        insert_rows(db_path, [Row(timedelta(0), status="timeout", http=None, error="second row")])
        wait_for(lambda: "second row" in "".join(list(reader.lines.queue)))
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout=20)
    err = tail.stderr.read()
    assert tail.returncode == 0 and "Traceback" not in err and "KeyboardInterrupt" not in err
