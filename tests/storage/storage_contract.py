"""The contract every store passes (subclassed once per store, like the email contract).

A subclass gives ``connector`` (a Connector whose default store is the one
under test) and says what the store holds outside our API (``stored_keys``,
``pending_uploads``), so "no partial object" is checked on the store itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from connectorctl.adapters.storage.base import PART_SIZE
from connectorctl.errors import InvalidInputError, RemoteFileNotFoundError, UnsupportedFeatureError
from connectorctl.gateway import Connector
from tests.storage.conftest import SECRET, log_rows

BIG = PART_SIZE * 2 + 12345  # three multipart parts, the last one short


def big_file(tmp_path: Path, size: int = BIG) -> Path:
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        block = os.urandom(1024 * 1024)
        for offset in range(0, size, len(block)):
            f.write(block[: size - offset])
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ExplodingStream(io.RawIOBase):
    """A pipe-like stream (not seekable) that dies after ``limit`` bytes, like a killed producer."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise KeyboardInterrupt
        n = min(len(buffer), self.left, 256 * 1024)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


class StorageContract:
    presigns = False

    @pytest.fixture
    def connector(self) -> Connector:
        raise NotImplementedError

    def stored_keys(self, connector: Connector) -> list[str]:
        raise NotImplementedError

    def pending_uploads(self, connector: Connector) -> list[str]:
        return []

    def test_small_object_round_trip_keeps_type_and_metadata(self, connector: Connector) -> None:
        storage = connector.storage()
        stored = storage.put("invoices/2026/42.pdf", b"%PDF-1.7 invoice", metadata={"order-id": "42"})
        assert (stored.size, stored.content_type) == (16, "application/pdf")
        assert storage.get("invoices/2026/42.pdf") == b"%PDF-1.7 invoice"
        head = storage.head("invoices/2026/42.pdf")
        assert (head.size, head.content_type, dict(head.metadata)) == (16, "application/pdf", {"order-id": "42"})
        assert head.last_modified is not None and head.etag
        assert storage.exists("invoices/2026/42.pdf") and not storage.exists("invoices/2026/43.pdf")

    def test_explicit_content_type_wins(self, connector: Connector) -> None:
        storage = connector.storage()
        storage.put("exports/report", b"a,b\n1,2\n", content_type="text/csv")
        assert storage.head("exports/report").content_type == "text/csv"

    def test_a_multipart_file_round_trips_as_one_logged_call(self, connector: Connector, tmp_path: Path) -> None:
        source = big_file(tmp_path)
        storage = connector.storage()
        seen: list[int] = []
        stored = storage.put("exports/big.bin", source, progress=lambda done, total: seen.append(done))
        assert stored.size == BIG and seen[-1] == BIG
        target = tmp_path / "back.bin"
        got = storage.download_to("exports/big.bin", target)
        assert got.size == BIG and sha(target) == sha(source)
        puts = [r for r in log_rows(connector) if r["operation"] == "storage_put"]
        assert len(puts) == 1 and puts[0]["status"] == "success"
        assert json.loads(puts[0]["request_data"])["object_key"] == "exports/big.bin"
        assert json.loads(puts[0]["response_data"])["size"] == BIG

    def test_a_pipe_uploads_in_parts_without_knowing_its_size(self, connector: Connector, tmp_path: Path) -> None:
        read, write = os.pipe()
        payload = os.urandom(PART_SIZE + 4096)
        with os.fdopen(write, "wb") as w:
            import threading

            threading.Thread(target=lambda: (w.write(payload), w.close()), daemon=True).start()
            with os.fdopen(read, "rb") as r:
                stored = connector.storage().put("streams/piped.bin", r)
        assert stored.size == len(payload)
        assert connector.storage().get("streams/piped.bin") == payload

    def test_download_streams_to_a_binary_stream(self, connector: Connector) -> None:
        connector.storage().put("a/b.txt", b"hello")
        out = io.BytesIO()
        assert connector.storage().download_to("a/b.txt", out).size == 5
        assert out.getvalue() == b"hello"

    def test_listing_pages_through_a_prefix_in_key_order(self, connector: Connector) -> None:
        storage = connector.storage()
        keys = [f"invoices/2026-{n:02d}.pdf" for n in (5, 1, 7, 3, 2, 6, 4)]
        for key in keys:
            storage.put(key, b"x")
        storage.put("invoices-archive/old.pdf", b"x")
        storage.put("other/2026-01.pdf", b"x")
        pages, after = [], None
        while True:
            page = storage.list("invoices/2026-", limit=3, after=after)
            pages.append([o.key for o in page.objects])
            if page.next_token is None:
                break
            after = page.next_token
        assert pages == [sorted(keys)[:3], sorted(keys)[3:6], sorted(keys)[6:]]
        assert [o.key for o in storage.iter_objects("invoices")] == sorted([*keys, "invoices-archive/old.pdf"])
        assert [o.size for o in storage.list("other/").objects] == [1]

    def test_missing_key_is_remote_file_not_found_and_leaves_no_local_file(self, connector: Connector, tmp_path: Path) -> None:
        storage = connector.storage()
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        for action in (lambda: storage.get("nope.txt"), lambda: storage.head("nope.txt"),
                       lambda: storage.download_to("nope.txt", downloads / "out.txt"),
                       lambda: storage.copy("nope.txt", "also-nope.txt")):
            with pytest.raises(RemoteFileNotFoundError):
                action()
        assert list(downloads.iterdir()) == []

    def test_delete_removes_and_is_idempotent(self, connector: Connector) -> None:
        storage = connector.storage()
        storage.put("tmp/x.txt", b"x")
        storage.delete("tmp/x.txt")
        storage.delete("tmp/x.txt")
        assert not storage.exists("tmp/x.txt") and "tmp/x.txt" not in self.stored_keys(connector)

    def test_copy_carries_content_and_metadata(self, connector: Connector) -> None:
        storage = connector.storage()
        storage.put("src/a.json", b"{}", metadata={"tenant": "acme"})
        copied = storage.copy("src/a.json", "dst/a.json")
        assert (copied.key, copied.content_type, dict(copied.metadata)) == ("dst/a.json", "application/json", {"tenant": "acme"})
        assert storage.get("dst/a.json") == b"{}"

    @pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "trailing/", "line\nbreak", "x" * 1025])
    def test_bad_keys_are_refused_before_any_call(self, connector: Connector, key: str) -> None:
        with pytest.raises(InvalidInputError):
            connector.storage().put(key, b"x")
        assert log_rows(connector) == []

    def test_an_interrupted_upload_leaves_no_object(self, connector: Connector) -> None:
        storage = connector.storage()
        with pytest.raises(KeyboardInterrupt):
            storage.put("exports/half.bin", io.BufferedReader(ExplodingStream(PART_SIZE * 2 + 1024)))
        assert "exports/half.bin" not in self.stored_keys(connector)
        assert not storage.exists("exports/half.bin")
        assert self.pending_uploads(connector) == []
        rows = [r for r in log_rows(connector) if r["operation"] == "storage_put"]
        assert [(r["status"], r["error_code"]) for r in rows] == [("failed", "interrupted")]

    def test_log_rows_never_hold_the_secret(self, connector: Connector) -> None:
        storage = connector.storage()
        storage.put("k.txt", b"v")
        storage.get("k.txt")
        with pytest.raises(RemoteFileNotFoundError):
            storage.get("missing.txt")
        text = json.dumps(log_rows(connector))
        assert SECRET not in text and "storage_get" in text

    def test_presigned_urls_or_an_explicit_refusal(self, connector: Connector) -> None:
        storage = connector.storage()
        storage.put("share/me.txt", b"shared")
        if self.presigns:
            url = storage.presign("share/me.txt", expires_in=60)
            assert url.method == "GET" and "X-Amz-Signature" in url.url and "X-Amz-Signature" not in repr(url)
            assert SECRET not in json.dumps(log_rows(connector))
            assert "X-Amz-Signature" not in json.dumps(log_rows(connector))
        else:
            with pytest.raises(UnsupportedFeatureError):
                storage.presign("share/me.txt")
