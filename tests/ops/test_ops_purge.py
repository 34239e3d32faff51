"""`connectorctl logs purge`: correctness, dry run, batches, and running beside writers and another purge."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import closing
from datetime import timedelta

import pytest
from tests.ops.opsdata import ROOT, Row, cli_env, insert_rows, popen_cli
from tests.support import run_on


pytestmark = pytest.mark.usefixtures("engine")  # the SQL behind these commands runs on both engines

def days(d: float) -> timedelta:
    return timedelta(days=d)


def count(db_path, where: str = "1=1") -> int:
    return run_on(db_path, lambda c: c.execute(f"SELECT count(*) FROM integration_logs WHERE {where}").fetchone()[0])


def test_dry_run_then_purge_with_default_retention(cli, db_path):
    ids = insert_rows(db_path, [Row(days(200)), Row(days(91)), Row(days(89)), Row(days(10)), Row(days(1))])
    dry = json.loads(cli("logs", "purge", "--dry-run", "-o", "json").stdout)
    assert (dry["days"], dry["would_delete"], dry["dry_run"]) == (90, 2, True)
    assert count(db_path) == 5
    done = cli("logs", "purge", "--yes", "--json")
    assert done.exit_code == 0
    assert json.loads(done.stdout)["deleted"] == 2
    remaining = {r["id"] for r in json.loads(cli("logs", "list", "--json").stdout)["data"]}
    assert remaining == set(ids[2:])
    assert json.loads(cli("logs", "purge", "--yes", "--json").stdout)["deleted"] == 0  # idempotent


def test_days_option_config_and_table(cli, db_path, home):
    insert_rows(db_path, [Row(days(40)), Row(days(20)), Row(days(3)), Row(days(1))])
    home.mkdir(exist_ok=True)  # on PostgreSQL nothing has created it yet
    (home / "config.yaml").write_text("log_retention_days: 30\n")
    assert json.loads(cli("logs", "purge", "--dry-run", "--json").stdout)["would_delete"] == 1
    result = cli("logs", "purge", "--yes", "--days", "2")
    assert result.exit_code == 0 and "deleted 3 rows" in result.stdout
    assert count(db_path) == 1


def test_batches_and_the_newest_row_is_kept_as_sequence_anchor(cli, db_path):
    insert_rows(db_path, [Row(days(100) - timedelta(minutes=i)) for i in range(10)])
    result = json.loads(cli("logs", "purge", "--yes", "--batch-size", "3", "--json").stdout)
    assert (result["deleted"], result["batches"]) == (9, 4)
    assert count(db_path) == 1  # every row was old: the newest stays so that `seq` keeps growing
    insert_rows(db_path, [Row(days(0))])
    seqs = run_on(db_path, lambda c: [r[0] for r in c.execute("SELECT seq FROM integration_logs ORDER BY seq")])
    assert seqs == [10, 11]


@pytest.mark.parametrize("args", [("--days", "0"), ("--days", "-3"), ("--days", "x"), ("--batch-size", "0")])
def test_bad_purge_input(cli, db_path, args):
    insert_rows(db_path, [Row(days(100))] * 2)
    result = cli("logs", "purge", "--yes", *args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert count(db_path) == 2


def test_two_purges_at_once_delete_each_row_once(db_path):
    insert_rows(db_path, [Row(days(100))] * 3000 + [Row(days(1))] * 50)
    procs = [popen_cli("logs", "purge", "--yes", "--batch-size", "100", "--json") for _ in range(2)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert sum(r["deleted"] for r in results) == 3000
    assert count(db_path) == 50
    counted = run_on(db_path, lambda c: c.execute("SELECT sum(count) FROM log_totals").fetchone()[0])
    assert counted == 3050  # the Prometheus totals still count every row logged, purged or not (store/totals.py)


WRITER = r"""
import os, sys, time
from connectorctl.store.db import StateDB
from connectorctl.store.logs import INSERT_LOG, iso_utc
db = StateDB(sys.argv[1], migrate=False)
n = errors = 0
worst = 0.0
while not os.path.exists(sys.argv[2]):
    row = ("W%025d" % n, None, "writer", "send_email", "https://x.test", "POST", "success", 200, 1, None, None, None, None, 1, None, "outbound", iso_utc(time.time()))
    t0 = time.perf_counter()
    try:
        db.run(lambda c: c.execute(INSERT_LOG, row))
        n += 1
    except Exception as exc:
        errors += 1
        print("ERR", exc, file=sys.stderr, flush=True)
    worst = max(worst, time.perf_counter() - t0)
    if n == 1:
        print("started", flush=True)
    time.sleep(0.001)
print(n, errors, worst, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # PostgreSQL: two purges at once, below, is enough
def test_purge_beside_a_live_writer_loses_nothing_in_the_window(db_path, tmp_path):
    insert_rows(db_path, [Row(days(120) - timedelta(seconds=i)) for i in range(20000)] + [Row(days(5) - timedelta(seconds=i)) for i in range(500)])
    stop = tmp_path / "stop-writer"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db_path), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=cli_env(), cwd=ROOT)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        before = count(db_path, "service_name = 'writer'")
        purge = subprocess.run([sys.executable, "-m", "connectorctl", "logs", "purge", "--yes", "--batch-size", "500", "--json"],
                               capture_output=True, text=True, env=cli_env(), cwd=ROOT, timeout=120)
        during = count(db_path, "service_name = 'writer'")
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=120)
    inserted, errors, worst = out.split()
    assert purge.returncode == 0, purge.stderr
    result = json.loads(purge.stdout)
    # 40 batches of at most 500 and the empty one that ends it; a slow batch on a loaded machine halves the next.
    assert result["deleted"] == 20000 and result["batches"] >= 41
    assert (int(errors), err) == (0, "")
    assert float(worst) < 2.0
    assert during > before  # the writer really inserted while the purge ran
    assert count(db_path, "service_name = 'writer'") == int(inserted)
    assert count(db_path, "service_name <> 'writer'") == 500  # every row inside the retention window is still there


def _fill_big(db_path, n: int = 400) -> None:
    insert_rows(db_path, [Row(days(100), error="x" * 2000) for _ in range(n)] + [Row(days(1))])


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_space_is_reclaimed_with_incremental_auto_vacuum(cli, db_path):
    from connectorctl.store.db import StateDB

    _fill_big(db_path)
    db = StateDB(db_path)
    db.run(lambda c: (c.execute("PRAGMA auto_vacuum=INCREMENTAL"), c.execute("VACUUM")))
    size_before = db_path.stat().st_size
    result = json.loads(cli("logs", "purge", "--yes", "--json").stdout)
    assert result["deleted"] == 400 and result["free_pages"] == 0 and result["wal_truncated"] is True
    assert db_path.stat().st_size < size_before / 2


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_vacuum_flag_shrinks_the_file(cli, db_path):
    _fill_big(db_path)
    result = json.loads(cli("logs", "purge", "--yes", "--vacuum", "--json").stdout)
    assert result["deleted"] == 400 and result["vacuumed"] is True and result["free_pages"] == 0
    without = json.loads(cli("logs", "purge", "--yes", "--json").stdout)
    assert "vacuumed" not in without


def test_purge_also_prunes_the_webhook_replay_store(cli, db_path, monkeypatch):
    import types

    calls = []
    fake = types.ModuleType("connectorctl.webhooks.replay")
    fake.prune_replay_store = lambda db, now: calls.append(now) or 4  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "connectorctl.webhooks.replay", fake)
    insert_rows(db_path, [Row(days(1))])
    result = json.loads(cli("logs", "purge", "--yes", "--json").stdout)
    assert result["replay_pruned"] == 4
    assert len(calls) == 1 and isinstance(calls[0], float)
    assert json.loads(cli("logs", "purge", "--dry-run", "--json").stdout).get("replay_pruned") is None and len(calls) == 1


def test_slow_batches_shrink_so_writers_never_wait_long(db_path, monkeypatch):
    from connectorctl.store import retention
    from connectorctl.store.db import StateDB

    insert_rows(db_path, [Row(days(100))] * 3000 + [Row(days(1))])
    monkeypatch.setattr(retention, "SLOW_BATCH_SECONDS", 0.0)  # every batch counts as slow
    with closing(StateDB(db_path)) as db:
        result = retention.purge(db, 90, batch_size=1000, pause=0)
    # 1000, 500, then 250 rows at a time (the floor) until an incomplete batch ends it
    assert (result["deleted"], result["batches"]) == (3000, 9)
    assert count(db_path) == 1
