"""A server resumes the Prometheus totals from the fold another server saved, instead of reading the whole log.

On a million rows the first full fold costs seconds of CPU; every restart, every extra worker and every
upgrade paid it again.  The saved fold must give exactly the numbers a full fold gives, and must not be
used once a purge has counted rows since it was taken.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connectorctl.api import prom
from connectorctl.gateway import Connector
from connectorctl.store import retention, totals
from connectorctl.store.logs import INSERT_LOG
from tests.api.conftest import NOW_DT, log_row, rid


def _full_fold(connector: Connector) -> str:
    """What a server that never saw a saved fold computes."""
    saved = connector.db.run(lambda c: c.execute("SELECT last_seq, purged, totals FROM log_totals_checkpoint").fetchall())
    with connector.db.write() as c:
        c.execute("DELETE FROM log_totals_checkpoint")
    folded = prom.LogTotals().fold(connector.db).to_json()
    with connector.db.write() as c:
        c.execute("DELETE FROM log_totals_checkpoint")
        c.executemany("INSERT INTO log_totals_checkpoint (id, last_seq, purged, totals) VALUES (1, ?, ?, ?)", saved)
    return folded


def _reads_from(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ``after_seq`` of every range of log rows folded from now on."""
    starts: list[int] = []
    since = totals.since

    def spy(conn: Any, after_seq: int, top: int) -> list[totals.Group]:
        starts.append(after_seq)
        return since(conn, after_seq, top)

    monkeypatch.setattr(totals, "since", spy)
    return starts


def test_a_new_server_resumes_from_the_saved_fold_with_the_same_numbers(connector: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
    first = prom.LogTotals().fold(connector.db)  # a server that folds the whole log saves its fold
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, [log_row(rid(800 + n), "fake", "failed", 30 * n, timedelta(seconds=n), http=503) for n in range(5)])
    reads = _reads_from(monkeypatch)
    resumed = prom.LogTotals().fold(connector.db)  # the next server, in another process or after a restart
    assert reads == [first.last_seq]  # only the five new rows were read
    assert resumed.rows == first.rows + 5
    assert resumed.to_json() == _full_fold(connector)


def test_a_purge_since_the_saved_fold_means_folding_from_the_start(connector: Connector, monkeypatch: pytest.MonkeyPatch) -> None:
    with connector.db.write() as c:
        c.executemany(INSERT_LOG, [log_row(rid(900 + n), "fake", "success", 10, timedelta(days=40)) for n in range(4)])
    prom.LogTotals().fold(connector.db)
    assert retention.purge(connector.db, 30, now=NOW_DT, pause=0)["deleted"] > 0
    reads = _reads_from(monkeypatch)
    after = prom.LogTotals().fold(connector.db)
    assert reads == [0]  # the purge may have deleted rows newer than the saved fold: it is not trusted
    assert after.calls[("fake", "success")] == 3 + 4  # the seeded rows plus the purged ones, counted once


def test_an_unreadable_saved_fold_is_ignored(connector: Connector) -> None:
    expected = prom.LogTotals().fold(connector.db).to_json()
    with connector.db.write() as c:
        c.execute("UPDATE log_totals_checkpoint SET totals = '{\"rows\": 1}'")
    assert prom.LogTotals().fold(connector.db).to_json() == expected
