"""The Prometheus totals are kept at write time, on both engines, and agree with the log row for row.

Whichever way a row gets into the log (the pipeline's group commit from many threads, an entry recorded
through the library, a direct insert, a replayed row that is already there), it is counted exactly once,
inbound rows not at all, and a purge never lowers a count.  An existing log is counted once, when the
migration runs, from its rows plus what earlier purges had deleted.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectorctl.domain.messages import EmailMessage
from connectorctl.domain.values import IntegrationLog, IntegrationStatus
from connectorctl.errors import InvalidInputError
from connectorctl.gateway import Connector
from connectorctl.store import admin, migrations, retention
from connectorctl.store.db import StateDB
from connectorctl.store.integration_log import SqliteIntegrationLog
from connectorctl.store.logs import INSERT_LOG
from connectorctl.store.totals import BUCKETS_MS
from tests.conftest import write_config

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)


def _row(n: int, service: str, status: str, duration_ms: int, *, days_ago: float = 0, http: int | None = 200,
         direction: str = "outbound") -> tuple[Any, ...]:
    created = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return (f"01TOTALS{n:018d}", None, service, "send_email", "https://x.example.invalid/send", "POST", status, http,
            duration_ms, None, None, None, None, 1, None, direction, created)


MIXED = [  # every latency bucket, both rate-limit sources, an inbound row (never counted), old and new rows
    *[_row(i, "fake", "success", ms, days_ago=40 if i % 2 else 0) for i, ms in enumerate([0, *BUCKETS_MS, 30001, 99999])],
    _row(100, "fake", "rate_limited", 0, http=None),
    _row(101, "fake", "rate_limited", 12, http=429, days_ago=40),
    _row(102, "sms1", "failed", 5000, http=503),
    _row(103, "sms1", "timeout", 30000, http=None, days_ago=40),
    _row(104, "fake", "success", 3, direction="inbound"),
]


def _expected(rows: list[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    """The counters computed from log rows in Python: (service, status, bucket, local) -> count, and -> ms."""
    out: Counter[tuple[Any, ...]] = Counter()
    for _, _, service, _, _, _, status, http, ms, *_, direction, _ in rows:
        if direction != "outbound":
            continue
        key = (service, status, bisect.bisect_left(BUCKETS_MS, ms), int(status == "rate_limited" and http is None))
        out[("count", *key)] += 1
        out[("ms", *key)] += ms
    return out


def _totals(db: StateDB) -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    rows = db.run(lambda c: c.execute(
        "SELECT service_name, status, bucket, local, count, duration_sum_ms FROM log_totals").fetchall())
    for service, status, bucket, local, count, ms in rows:
        out[("count", service, status, bucket, local)] += count
        out[("ms", service, status, bucket, local)] += ms
    return +out


def _log(db: StateDB) -> list[tuple[Any, ...]]:
    return db.run(lambda c: c.execute(f"SELECT {INSERT_LOG.split('(')[1].split(')')[0]} FROM integration_logs").fetchall())


def test_every_way_into_the_log_is_counted_once_and_a_purge_lowers_nothing(engine: str, home: Path) -> None:
    write_config(home, "email_vendor: file\n")
    connector = Connector()
    db = connector.db
    with db.write() as c:  # a direct (bulk) insert
        c.executemany(INSERT_LOG, MIXED)
    gateway = connector.email()

    def sender(n: int) -> None:  # the pipeline: group commits shared by threads
        for i in range(15):
            gateway.send(EmailMessage(to=(f"t{n}-{i}@example.com",), subject="s", text="x"))

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    SqliteIntegrationLog(db).log(IntegrationLog(
        id="01TOTALSLIBRARY0000000000", service_name="sms1", endpoint="e", method="POST", status=IntegrationStatus.FAILED,
        duration_ms=700, attempt_number=2, created_at="2027-01-15T07:00:00.000Z", http_status_code=500,
    ))
    replay = f"{INSERT_LOG} ON CONFLICT (id) DO NOTHING"  # a row written again (a replayed spool): already counted
    db.run(lambda c: c.execute(replay, MIXED[0]))
    db.run(lambda c: c.execute(replay, _row(200, "fake", "success", 42)))

    logged = _log(db)
    assert len(logged) == len(MIXED) + 6 * 15 + 1 + 1
    expected = _expected(logged)
    assert _totals(db) == expected
    assert retention.purge(db, 30, now=NOW, pause=0)["deleted"] > 0
    assert len(_log(db)) < len(logged)
    assert _totals(db) == expected  # the purged rows are still counted
    connector.close()


def test_concurrent_writers_on_one_group_lose_no_count(engine: str, state_target: Path | str) -> None:
    """Autocommit inserts racing on the same counter row (one process's threads, each its own connection)."""
    db = StateDB(state_target)

    def writer(n: int) -> None:
        for i in range(40):
            db.run(lambda c: c.execute(INSERT_LOG, _row(1000 * n + i, "fake", "success", 80)))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert _totals(db) == Counter({("count", "fake", "success", 4, 0): 160, ("ms", "fake", "success", 4, 0): 160 * 80})
    db.close()


def _before_totals_at_write_time(engine: str, home: Path, request: pytest.FixtureRequest,
                                 monkeypatch: pytest.MonkeyPatch) -> Path | str:
    """A fresh database with the schema as it was before migration 8."""
    migrations._load_area_migrations()  # registered before the list is narrowed, kept after
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", [mig for mig in migrations.MIGRATIONS if mig[0] != 8])
        if engine == "sqlite":
            target: Path | str = home / "old.db"
        else:
            server = request.getfixturevalue("postgres_server")
            with psycopg.connect(server.url(), autocommit=True) as admin:
                admin.execute("DROP DATABASE IF EXISTS totals_upgrade WITH (FORCE)")
                admin.execute("CREATE DATABASE totals_upgrade")
            target = server.url("totals_upgrade")
        StateDB(target).close()
    return target


@pytest.mark.fresh_schema  # the old schema is made by the migrations before this one, not copied from a template
def test_upgrading_counts_the_existing_log_and_the_purged_totals_once(
    engine: str, home: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _before_totals_at_write_time(engine, home, request, monkeypatch)
    old = StateDB(target, migrate=False)
    with old.write() as c:
        c.executemany(INSERT_LOG, MIXED)
        c.execute("INSERT INTO log_totals_purged VALUES ('fake', 'success', 3, 0, 7, 140)")  # rows purged long ago
        c.execute("INSERT INTO log_totals_purged VALUES ('gone', 'failed', 12, 0, 2, 90000)")
        c.execute("INSERT INTO log_totals_checkpoint VALUES (1, 5, 9, '{}')")
    old.close()

    db = StateDB(target)  # the upgrade: migration 8 counts what is there
    expected = _expected(MIXED)
    expected.update({("count", "fake", "success", 3, 0): 7, ("ms", "fake", "success", 3, 0): 140,
                     ("count", "gone", "failed", 12, 0): 2, ("ms", "gone", "failed", 12, 0): 90000})
    assert _totals(db) == expected
    tables = {"sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
              "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"}[engine]
    names = {row[0] for row in db.run(lambda c: c.execute(tables).fetchall())}
    assert "log_totals" in names and not names & {"log_totals_purged", "log_totals_checkpoint"}
    db.run(lambda c: c.execute(INSERT_LOG, _row(300, "gone", "failed", 40000, http=500)))  # counted from now on
    assert _totals(db)[("count", "gone", "failed", 12, 0)] == 3
    with closing(StateDB(target)) as again:
        assert again.migrate() == []  # counted once: opening again does not count again
    assert _totals(db)[("count", "gone", "failed", 12, 0)] == 3
    db.close()


def test_copy_keeps_the_targets_own_counts_and_brings_the_sources_once(home: Path, postgres_url: str) -> None:
    """A database with log rows of its own is refused (its rows are numbered like the source's, which would be
    skipped as copied before); after a copy into an empty one the hosts switch over and count their calls, and
    running the copy again must not take those counts away nor add the source's a second time."""
    source = StateDB(home / "connectorctl.db")
    with source.write() as c:
        c.executemany(INSERT_LOG, MIXED)
    assert retention.purge(source, 30, now=NOW, pause=0)["deleted"] > 0  # counted, no longer in the log
    brought = _totals(source)
    source.close()
    target = StateDB(postgres_url)
    own = _row(400, "pg", "success", 70)
    target.run(lambda c: c.execute(INSERT_LOG, own))
    with pytest.raises(InvalidInputError, match="already holds integration_logs rows of its own"):
        admin.copy(home / "connectorctl.db", postgres_url)
    assert _log(target) == [own] and _totals(target) == _expected([own])  # nothing copied, nothing lost
    target.run(lambda c: c.execute("TRUNCATE integration_logs, log_totals"))

    admin.copy(home / "connectorctl.db", postgres_url, batch_size=4)
    assert _totals(target) == brought
    later = _row(500, "pg", "failed", 900, http=500)
    target.run(lambda c: c.execute(INSERT_LOG, later))  # the hosts switched over; the copy is run once more
    admin.copy(home / "connectorctl.db", postgres_url, batch_size=4)
    assert _totals(target) == brought + _expected([later])
    target.close()
