"""Where an upload's bytes come from and a download's bytes go, with bounded memory.

A :class:`Source` hands each attempt a fresh reader when it can (bytes, a file
on disk, a seekable stream): those uploads are idempotent and may be retried.
A pipe (stdin) can be read once; once its first byte is gone a failed attempt
is final, whatever the store answered.  Downloads to a file go to a temporary
file beside it that replaces the target only when the whole object arrived.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Union

from connectorctl.errors import InvalidInputError

READ_CHUNK = 1024 * 1024
Progress = Callable[[int, Union[int, None]], None]
"""Called with (bytes done in this attempt, total bytes or None when unknown)."""

UploadData = Union[bytes, bytearray, memoryview, str, os.PathLike, BinaryIO]


class Source:
    def __init__(self, size: int | None, replayable: bool) -> None:
        self.size = size
        self.replayable = replayable
        self.started = False

    def whole(self) -> bytes:
        """All the bytes at once (only for a source no bigger than the multipart threshold)."""
        return b"".join(self.chunks(None))

    def chunks(self, progress: Progress | None) -> Iterator[bytes]:
        done = 0
        for chunk in self._read():
            self.started = True
            done += len(chunk)
            if progress is not None:
                progress(done, self.size)
            yield chunk

    def _read(self) -> Iterator[bytes]:
        raise NotImplementedError


class _BytesSource(Source):
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        super().__init__(len(data), True)
        self.data = memoryview(data).cast("B")

    def _read(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), READ_CHUNK):
            yield bytes(self.data[start : start + READ_CHUNK])


class _FileSource(Source):
    def __init__(self, path: Path) -> None:
        try:
            info = path.stat()
        except FileNotFoundError:
            raise InvalidInputError(f"no such file: {path}") from None
        except OSError as exc:
            raise InvalidInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not path.is_file():
            raise InvalidInputError(f"{path} is not a regular file")
        super().__init__(info.st_size, True)
        self.path = path

    def _read(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    yield chunk
        except OSError as exc:
            raise InvalidInputError(f"cannot read {self.path}: {exc.strerror or exc}") from None


class _StreamSource(Source):
    def __init__(self, stream: BinaryIO) -> None:
        try:
            seekable = stream.seekable()
            start = stream.tell() if seekable else 0
            size = os.fstat(stream.fileno()).st_size - start if seekable else None
        except (OSError, ValueError, AttributeError):
            seekable, start, size = False, 0, None
        super().__init__(size, seekable)
        self.stream = stream
        self.start = start

    def _read(self) -> Iterator[bytes]:
        if self.replayable:
            self.stream.seek(self.start)
        while chunk := self.stream.read(READ_CHUNK):
            yield bytes(chunk)


def source_for(data: UploadData) -> Source:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _BytesSource(data)
    if isinstance(data, (str, os.PathLike)):
        return _FileSource(Path(data))
    if hasattr(data, "read"):
        return _StreamSource(data)
    raise InvalidInputError(f"cannot upload a {type(data).__name__}: pass bytes, a path or a binary file object")


class Sink:
    """Where one download goes; ``started`` is set once a byte has been written."""

    replayable = True
    started = False

    def open(self) -> BinaryIO:
        raise NotImplementedError

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass


class StreamSink(Sink):
    replayable = False  # bytes already written to a pipe cannot be taken back

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def open(self) -> BinaryIO:
        return self.stream

    def commit(self) -> None:
        self.stream.flush()


class FileSink(Sink):
    """Writes into a temporary file next to ``path``; :meth:`commit` moves it into place."""

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            raise InvalidInputError(f"{path} is a directory")
        if not path.parent.is_dir():
            raise InvalidInputError(f"no such directory: {path.parent}")
        self.path = path
        self.handle: BinaryIO | None = None
        self.tmp: Path | None = None

    def open(self) -> BinaryIO:
        """A fresh, empty temporary file for one attempt."""
        self.discard()
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        except OSError as exc:
            raise InvalidInputError(f"cannot write to {self.path.parent}: {exc.strerror or exc}") from None
        self.tmp, self.handle = Path(name), os.fdopen(fd, "wb")
        return self.handle

    def commit(self) -> None:
        if self.handle is not None and self.tmp is not None:
            self.handle.close()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(self.tmp, 0o666 & ~umask)  # a new file's usual mode, not mkstemp's 0600
            # Renamed over an existing file, ext4 writes the whole new file out inside the rename (its
            # guard for programs that skip fsync), which stalls a large download.  It is complete here,
            # so the old file goes first and the new one takes its name right after.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            os.replace(self.tmp, self.path)
            self.handle = self.tmp = None

    def discard(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None
