"""Fixtures for the operations tests; the shared data and helpers live in opsdata.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.opsdata import SEED, insert_rows


@pytest.fixture
def db_path(state_target: Path | str) -> Path | str:
    """The installation's state: every operations test runs on SQLite and on PostgreSQL."""
    return state_target


@pytest.fixture
def seeded(db_path: Path) -> list[str]:
    return insert_rows(db_path, SEED)
