"""A worker forked from a process that already used PostgreSQL (gunicorn --preload, celery, multiprocessing)."""

from __future__ import annotations

import os

import psycopg

from connectorctl.store.db import StateDB


def test_a_forked_child_closing_the_inherited_database_leaves_the_parents_sessions_alone(postgres_url: str) -> None:
    db = StateDB(postgres_url)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as observer:

            def parent_sessions() -> set[int]:
                rows = observer.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                return {pid for (pid,) in rows}

            db.run(lambda c: c.execute("SELECT 1"))
            before = parent_sessions()
            assert before
            child = os.fork()
            if child == 0:  # the child holds copies of the parent's sockets: closing them must not end its sessions
                try:
                    db.close()
                finally:
                    os._exit(0)
            os.waitpid(child, 0)
            assert parent_sessions() == before
            assert db.run(lambda c: c.execute("SELECT 1").fetchone()[0]) == 1
    finally:
        db.close()
