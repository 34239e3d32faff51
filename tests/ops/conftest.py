"""Fixtures for the operations tests; the shared data and helpers live in opsdata.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.ops.opsdata import SEED, insert_rows


@pytest.fixture
def db_path(home: Path) -> Path | str:
    """The installation's state: this test's PostgreSQL database when the module runs on both engines."""
    return os.environ.get("CONNECTORCTL_DATABASE_URL") or home / "connectorctl.db"


@pytest.fixture
def seeded(db_path: Path) -> list[str]:
    return insert_rows(db_path, SEED)
