"""Read functions for the ReadPool tests: module-level, so a worker process can import them."""

from __future__ import annotations

import os
import time
from typing import Any

from connectorctl.errors import StateStoreError
from connectorctl.store.db import StateDB


def echo(db: StateDB, settings: Any, value: Any) -> Any:
    return value


def pid(db: StateDB, settings: Any) -> int:
    return os.getpid()


def slow_echo(db: StateDB, settings: Any, seconds: float, value: Any) -> Any:
    time.sleep(seconds)
    return value


def scheduling(db: StateDB, settings: Any) -> tuple[int, int]:
    """(scheduling policy, niceness) of the process running the read."""
    return os.sched_getscheduler(0), os.nice(0)


def fail(db: StateDB, settings: Any, message: str, hint: str) -> None:
    raise StateStoreError(message, hint=hint)


class Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle this")


def fail_unpicklably(db: StateDB, settings: Any) -> None:
    raise Unpicklable("details that cannot travel")


def die(db: StateDB, settings: Any) -> None:
    os._exit(3)
