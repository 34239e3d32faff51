"""Upgrading a database that has planner statistics keeps its queries on the indexes they were written for."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from connectorctl.store.db import StateDB
from connectorctl.store.logs import INSERT_LOG


@pytest.mark.fresh_schema
def test_rebuilding_the_status_index_keeps_logs_list_on_the_service_time_index(tmp_path: Path) -> None:
    """An upgraded database with planner statistics must not take the rebuilt, statistics-less index for
    `logs list --service` (it would sort the whole service in a temporary tree: 100x slower on a big log)."""
    path = tmp_path / "state.db"
    StateDB(path).close()
    conn = sqlite3.connect(path)
    rows = [
        (f"id{i:020d}", None, f"svc-{i % 10}", "op", "", "POST", "failed" if i % 20 == 0 else "success", 200, 12,
         None, None, None, None, 1, None, "outbound", f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.000Z")
        for i in range(20000)
    ]
    conn.executemany(INSERT_LOG, rows)
    conn.execute("DELETE FROM schema_migrations WHERE number = 30")  # the upgrade from before migration 30
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    StateDB(path).close()
    conn = sqlite3.connect(path)
    plan = " ".join(
        r[-1]
        for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM integration_logs WHERE service_name = ? "
            "ORDER BY created_at DESC, seq DESC LIMIT 50",
            ("svc-3",),
        )
    )
    conn.close()
    assert "ix_logs_service_time_cover" in plan, plan
