"""Telling every process that shared rows changed, so readers need not query them on every call.

A reader keeps rows in memory together with the version it saw *before* reading
them: while the version is unchanged, so are the rows.  ``None`` means "unknown:
read the rows".  On SQLite the version is a 64-bit counter in a small
memory-mapped file beside the database, incremented after each commit under an
exclusive file lock, so reading it is a memory access.  On PostgreSQL it counts
the NOTIFYs received on a LISTEN connection (``store/postgres.py``): a trigger
sends one in the same transaction as every write to the watched table.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
from typing import Iterator, Protocol

_U64 = struct.Struct("<Q")


class ChangeSignal(Protocol):
    def version(self) -> int | None:
        """A number that moves whenever the watched rows may have changed; None when that is not known."""

    def bump(self) -> None:
        """This process committed a change to the watched rows."""

    def revive(self) -> None:
        """The database answered a read: resume watching if that had been lost."""

    def close(self) -> None: ...


class FileCounter:
    """The shared counter file of one SQLite database; if the file cannot be used, every read queries."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._map: mmap.mmap | None = None
        self._fd: int | None = None
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if os.fstat(self._fd).st_size < 8:
                os.pwrite(self._fd, b"\0" * 8, 0)
            self._map = mmap.mmap(self._fd, 8)
        except (OSError, ValueError):
            self._map = None

    def version(self) -> int | None:
        return None if self._map is None else int(_U64.unpack_from(self._map, 0)[0])

    def bump(self) -> None:
        if self._map is None or self._fd is None:
            return
        with _file_lock(self._fd):
            _U64.pack_into(self._map, 0, _U64.unpack_from(self._map, 0)[0] + 1)

    def revive(self) -> None:
        """Nothing to resume: the file is either mapped or not usable at all."""

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def _file_lock(fd: int) -> Iterator[None]:
    """An exclusive lock across processes; on Windows none, where a lost increment only delays a reload."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
