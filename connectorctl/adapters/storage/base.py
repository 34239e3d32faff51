"""The storage channel: every object operation, through the pipeline, on any store.

The base runs each operation as one pipeline call (rate limit, circuit, retry,
one integration-log row per attempt with the key, size and duration) and maps
failures once (:mod:`.errors`).  A store module only says how to reach its
store: the obstore instance, how a key is named in the log, and what it cannot
do.  A streamed upload is one call per whole-object attempt: obstore splits a
large one into multipart parts inside the attempt and aborts the multipart
upload when the attempt fails, so no partial object is ever visible.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, List, Mapping, TypeVar

from connectorctl.adapters.base import Adapter
from connectorctl.adapters.context import AdapterContext
from connectorctl.adapters.declaration import Vendor
from connectorctl.adapters.storage.errors import translate
from connectorctl.adapters.storage.transfer import FileSink, Progress, Sink, Source, StreamSink, UploadData, source_for
from connectorctl.domain.storage import ObjectPage, PresignedUrl, StoredObject, check_key, check_prefix
from connectorctl.errors import (
    ConnectorctlError,
    ConnectorError,
    InvalidInputError,
    RemoteFileNotFoundError,
    UnsupportedFeatureError,
)
from connectorctl.resilience.pipeline import Call, VendorResponse
from connectorctl.settings import VendorSettings

MIB = 1024 * 1024
PART_SIZE = 5 * MIB  # S3's smallest part, and the multipart threshold: smaller objects go up in one request
MAX_CONCURRENCY = 6  # parts in flight; memory stays near PART_SIZE * MAX_CONCURRENCY (S3 allows 10,000 parts: ~48 GiB)
MAX_EXPIRY = timedelta(days=7)  # SigV4's limit for a presigned URL
STANDARD_ATTRIBUTES = {
    "content-type",
    "content-disposition",
    "content-encoding",
    "content-language",
    "cache-control",
    "storage-class",
}
OptionsT = TypeVar("OptionsT", bound=VendorSettings)


class StorageAdapter(Adapter[OptionsT]):
    """Implements :class:`~connectorctl.domain.roles.CloudStorage` for one configured store."""

    channel = "storage"
    capabilities = frozenset({"metadata"})
    sorted_listing = True  # the store lists keys in order, so a page can stop early

    def __init__(self, context: AdapterContext[OptionsT], vendor: Vendor) -> None:
        super().__init__(context, vendor)
        self.secrets: tuple[str, ...] = ()

    # -- what a store module provides ---------------------------------------------
    def build_store(self) -> Any:
        """The obstore store instance (credentials are read here, once)."""
        raise NotImplementedError

    def location(self, key: str) -> str:
        """How ``key`` is named in the integration log's endpoint column."""
        raise NotImplementedError

    def sign_url(self, method: str, key: str, expires_in: timedelta) -> str:
        raise UnsupportedFeatureError(f"{self.slug} cannot hand out presigned URLs", service=self.slug)

    sends_attributes = True  # content type and metadata travel with the object; else after_put keeps them

    def after_put(self, key: str, attributes: Mapping[str, str]) -> None:
        pass

    def read_attributes(self, key: str, stored: Mapping[str, str]) -> Mapping[str, str]:
        """Content type and metadata of ``key``; ``stored`` is what the store itself returned."""
        return stored

    def after_copy(self, source: str, target: str) -> None:
        pass

    def after_delete(self, key: str) -> None:
        pass

    def hidden(self, key: str) -> bool:
        return False

    @property
    def bucket(self) -> str | None:
        """The bucket (or container) keys live in, to name it when it is missing."""
        return None

    # -- operations --------------------------------------------------------------
    @cached_property
    def store(self) -> Any:
        return self.build_store()

    def put(
        self,
        key: str,
        data: UploadData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> StoredObject:
        """Store bytes, a file (path) or a binary stream under ``key``; replaces any object there."""
        import obstore

        check_key(key)
        if self.hidden(key):
            raise InvalidInputError(f"the {self.slug} store reserves the key {key!r} for itself")
        source = source_for(data)
        attributes = {"Content-Type": content_type or guess_type(key), **_check_metadata(metadata)}
        sent = attributes if self.sends_attributes else None
        store = self.store

        def upload() -> VendorResponse:
            if source.size is not None and source.size <= PART_SIZE:
                body: Any = source.whole()
                if progress is not None:
                    progress(len(body), source.size)
                result = obstore.put(store, key, body, attributes=sent, use_multipart=False)
                size = len(body)
            else:  # chunks pulled through Python, so Ctrl-C/SIGTERM reach the upload and abort it
                counted = _Counter(source.chunks(progress))
                result = obstore.put(
                    store, key, counted, attributes=sent, chunk_size=PART_SIZE, max_concurrency=MAX_CONCURRENCY
                )
                size = counted.total
            self.after_put(key, attributes)
            stored = StoredObject(key, size, None, result.get("e_tag"), attributes["Content-Type"], _user(attributes))
            return VendorResponse(stored, 200, {"size": size, "etag": stored.etag})

        request = {"size": source.size, "content_type": attributes["Content-Type"]}
        return self._call("put", "PUT", key, upload, request=request, once=source).value

    def get(self, key: str) -> bytes:
        """The whole object in memory (use :meth:`download_to` for large ones)."""
        import obstore

        check_key(key)
        store = self.store

        def fetch() -> VendorResponse:
            data = bytes(obstore.get(store, key).bytes())
            return VendorResponse(data, 200, {"size": len(data)})

        return self._call("get", "GET", key, fetch).value

    def download_to(self, key: str, target: str | Path | BinaryIO, *, progress: Progress | None = None) -> StoredObject:
        """Stream the object to a file (replaced only once complete) or a binary stream (e.g. stdout)."""
        import obstore

        check_key(key)
        sink = FileSink(Path(target)) if isinstance(target, (str, Path)) else StreamSink(target)
        store = self.store

        def fetch() -> VendorResponse:
            result = obstore.get(store, key)
            total, done = result.meta["size"], 0
            out = sink.open()
            try:
                for chunk in result.stream(min_chunk_size=MIB):
                    out.write(chunk)
                    sink.started = True
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                sink.commit()
            finally:
                sink.discard()
            stored = self._describe(result.meta, self.read_attributes(key, result.attributes))
            return VendorResponse(stored, 200, {"size": done, "etag": stored.etag})

        return self._call("get", "GET", key, fetch, once=sink).value

    def head(self, key: str) -> StoredObject:
        """Size, dates, content type and user metadata; :class:`RemoteFileNotFoundError` if absent."""
        check_key(key)
        store = self.store
        return self._call("head", "HEAD", key, lambda: VendorResponse(self._head(store, key), 200)).value

    def exists(self, key: str) -> bool:
        check_key(key)
        store = self.store

        def probe() -> VendorResponse:
            try:
                self._head(store, key)
            except ConnectorError as exc:
                if isinstance(exc, RemoteFileNotFoundError):
                    return VendorResponse(False, 404)
                raise
            return VendorResponse(True, 200)

        return self._call("head", "HEAD", key, probe).value

    def delete(self, key: str) -> None:
        """Remove the object; removing one that is not there is not an error (as on S3)."""
        import obstore

        check_key(key)
        store = self.store

        def remove() -> VendorResponse:
            try:
                obstore.delete(store, key)
            except FileNotFoundError:
                pass
            self.after_delete(key)
            return VendorResponse(None, 204)

        self._call("delete", "DELETE", key, remove)

    def copy(self, source: str, target: str) -> StoredObject:
        """Server-side copy (content type and metadata go along); replaces ``target``."""
        import obstore

        check_key(source, "source key")
        check_key(target, "target key")
        store = self.store

        def duplicate() -> VendorResponse:
            obstore.copy(store, source, target)
            self.after_copy(source, target)
            return VendorResponse(self._head(store, target), 200)

        return self._call("copy", "PUT", target, duplicate, request={"source": source}).value

    def list(self, prefix: str = "", *, limit: int = 1000, after: str | None = None) -> ObjectPage:
        """One page of the keys starting with ``prefix``, in key order, after ``after``."""
        prefix = check_prefix(prefix)
        if not 1 <= limit <= 10000:
            raise InvalidInputError("limit must be between 1 and 10000")
        store = self.store

        def page() -> VendorResponse:
            found = self._list(store, prefix, limit, after)
            objects = tuple(self._describe(meta) for meta in found[:limit])
            more = len(found) > limit
            return VendorResponse(ObjectPage(objects, objects[-1].key if more else None), 200, {"count": len(objects)})

        return self._call("list", "GET", prefix, page, request={"after": after, "limit": limit}).value

    def iter_objects(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object under ``prefix``, one listing call per page."""
        after: str | None = None
        while True:
            page = self.list(prefix, after=after)
            yield from page.objects
            if page.next_token is None:
                return
            after = page.next_token

    def presign(self, key: str, *, expires_in: timedelta | float = 3600, method: str = "GET") -> PresignedUrl:
        """A URL that lets anyone holding it GET (or PUT) ``key`` until it expires."""
        check_key(key)
        expiry = expires_in if isinstance(expires_in, timedelta) else timedelta(seconds=expires_in)
        method = method.upper()
        if method not in ("GET", "PUT"):
            raise InvalidInputError(f"a presigned URL is for GET or PUT, not {method}")
        if not timedelta(seconds=1) <= expiry <= MAX_EXPIRY:
            raise InvalidInputError("a presigned URL must expire between 1 second and 7 days from now")
        if "presign" not in self.capabilities:
            raise UnsupportedFeatureError(
                f"the {self.slug} store cannot hand out URLs",
                service=self.slug,
                hint="configure an S3-compatible store (see docs/storage.md)",
            )
        store = self.store  # noqa: F841 - builds the store (and reads credentials) outside the attempt
        expires_at = datetime.fromtimestamp(self.context.clock.time(), timezone.utc) + expiry

        def sign() -> VendorResponse:
            url = self.sign_url(method, key, expiry)
            return VendorResponse(
                PresignedUrl(url, method, key, expires_at), None, {"expires_at": expires_at.isoformat()}
            )

        request = {"method": method, "expires_in_seconds": int(expiry.total_seconds())}
        return self._call("presign", "SIGN", key, sign, request=request).value

    # -- the reference design's CloudStorage names ----------------------------------
    def upload(self, path: str, content: bytes, *, content_type: str | None = None) -> str:
        return self.put(path, content, content_type=content_type).key

    def download(self, path: str) -> bytes:
        return self.get(path)

    def temporary_url(self, path: str, expires_in_seconds: int) -> str:
        return self.presign(path, expires_in=expires_in_seconds).url

    # -- plumbing ------------------------------------------------------------------
    def _call(
        self,
        operation: str,
        method: str,
        key: str,
        fn: Callable[[], VendorResponse],
        *,
        request: Mapping[str, Any] | None = None,
        once: Source | Sink | None = None,
    ) -> VendorResponse:
        """Run ``fn`` as one pipeline call; ``once`` is a body that may not be replayable (a pipe)."""
        call = Call(
            self.slug,
            f"storage_{operation}",
            self.location(key),
            method,
            request_data={"object_key": key, **(request or {})},
            idempotent=once is None or once.replayable,
            secrets=self.secrets,
        )

        def attempt() -> VendorResponse:
            try:
                return fn()
            except ConnectorctlError as exc:
                error: ConnectorctlError = exc
            except Exception as exc:  # noqa: BLE001 - mapped once, here
                error = translate(exc, service=self.slug, key=key, bucket=self.bucket)
                error.__cause__ = exc
            if isinstance(error, ConnectorError) and once is not None and not once.replayable and once.started:
                error.vendor_processed = None  # a pipe is partly read or written: this attempt must be the last
            raise error

        return self.run(call, attempt)

    def _head(self, store: Any, key: str) -> StoredObject:
        import obstore

        try:
            result = obstore.get(store, key, options={"head": True})
        except Exception as exc:  # noqa: BLE001 - mapped once, here
            raise translate(exc, service=self.slug, key=key, bucket=self.bucket) from exc
        return self._describe(result.meta, self.read_attributes(key, result.attributes))

    def _list(self, store: Any, prefix: str, limit: int, after: str | None) -> List[Mapping[str, Any]]:  # noqa: UP006 - `list` is a method here
        import obstore

        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else None
        found: List[Mapping[str, Any]] = []  # noqa: UP006
        for chunk in obstore.list(store, folder, offset=after, chunk_size=min(limit + 1, 1000)):
            for meta in chunk:
                path = meta["path"]
                if path.startswith(prefix) and not self.hidden(path):
                    found.append(meta)
                elif self.sorted_listing and path > prefix:
                    return found  # sorted: nothing further can match
            if self.sorted_listing and len(found) > limit:
                return found
        found.sort(key=lambda m: m["path"])
        return found

    def _describe(self, meta: Mapping[str, Any], attributes: Mapping[str, str] | None = None) -> StoredObject:
        attributes = attributes or {}
        return StoredObject(
            key=meta["path"],
            size=meta["size"],
            last_modified=meta.get("last_modified"),
            etag=meta.get("e_tag"),
            content_type=attributes.get("Content-Type"),
            metadata=_user(attributes),
        )


class _Counter:
    """Counts the bytes obstore pulled from an iterator, for the result and the log row."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.total = 0

    def __iter__(self) -> "_Counter":
        return self

    def __next__(self) -> bytes:
        chunk = next(self.chunks)
        self.total += len(chunk)
        return chunk


def guess_type(key: str) -> str:
    return mimetypes.guess_type(key, strict=False)[0] or "application/octet-stream"


def _user(attributes: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in attributes.items() if k.lower() not in STANDARD_ATTRIBUTES}


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata travels as HTTP headers: ASCII names and values, no line breaks."""
    checked: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if (
            not isinstance(name, str)
            or not name
            or not all(c.isalnum() or c in "-_" for c in name)
            or not name.isascii()
        ):
            raise InvalidInputError(f"metadata name {name!r} must be ASCII letters, digits, '-' or '_'")
        if name.lower() in STANDARD_ATTRIBUTES:
            raise InvalidInputError(f"metadata name {name!r} is reserved (use content_type for Content-Type)")
        if not isinstance(value, str) or not value.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise InvalidInputError(f"metadata {name!r} must be printable ASCII text")
        checked[name.lower()] = value
    return checked
