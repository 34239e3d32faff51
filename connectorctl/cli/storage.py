"""``connectorctl storage put|get|ls|stat|rm|cp|url``: objects in the configured store.

Each command calls the storage library once and renders its result object:
a table for people, ``-o json|jsonl`` for scripts.  Object bytes written to
stdout (``get KEY -``) are the only thing on stdout; the summary then goes to
stderr.  A transfer shows a progress bar on a terminal, and Ctrl-C or SIGTERM
stop it cleanly: no partial object in the store, no partial file on disk.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, List, Optional

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    YesOption,
    confirm,
    fmt,
    grid,
    human_time,
    kv_table,
    render,
    state,
    stderr,
)
from connectorctl.cli.plain import CommandGroup

if TYPE_CHECKING:
    from connectorctl.adapters.storage.base import StorageAdapter
    from connectorctl.domain.storage import StoredObject

app = CommandGroup(help="Put, get, list and share objects in the configured store (local folder or S3-compatible).")
StoreOption = typer.Option(
    None, "--store", help="Store to use instead of storage_vendor (e.g. local, s3).", metavar="SLUG"
)
KeyArg = typer.Argument(..., metavar="KEY", help="Object key, e.g. invoices/2026/42.pdf.")
PROGRESS_FROM_BYTES = 8 * 1024 * 1024


def _storage(ctx: typer.Context, store: Optional[str]) -> "StorageAdapter":
    return state(ctx).connector().storage(store)


def _object_table(obj: "StoredObject", title: str) -> Any:
    data = obj.to_dict()
    rows = [(k, v) for k, v in data.items() if k != "metadata"]
    rows += [(f"metadata.{k}", v) for k, v in data["metadata"].items()]
    return kv_table(title, rows)


def _render_object(obj: "StoredObject", output: OutputFormat, title: str) -> None:
    render(output, obj.to_dict(), lambda: _object_table(obj, title))


@contextlib.contextmanager
def _transfer(label: str, size: int | None) -> Iterator[Any]:
    """A progress callback (a bar on a terminal for large transfers) and SIGTERM treated as Ctrl-C,
    so the library can abort a multipart upload or drop a half-written file before the process ends."""
    import signal

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        console = stderr()
        if not console.is_terminal or (size is not None and size < PROGRESS_FROM_BYTES):
            yield None
            return
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with Progress(
            "{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=console, transient=True
        ) as bar:
            task = bar.add_task(label, total=size)
            yield lambda done, total: bar.update(task, completed=done, total=total)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _metadata(items: List[str]) -> dict[str, str]:
    from connectorctl.errors import InvalidInputError

    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInputError(f"--meta must look like NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


@app.command("put")
def storage_put(
    ctx: typer.Context,
    local: str = typer.Argument(..., metavar="LOCAL", help="File to upload, or - for stdin."),
    key: str = KeyArg,
    content_type: Optional[str] = typer.Option(
        None, "--content-type", help="MIME type (default: guessed from the key).", metavar="TYPE"
    ),
    meta: List[str] = typer.Option([], "--meta", help="User metadata NAME=VALUE (repeatable).", metavar="NAME=VALUE"),
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Upload a file (streamed in parts when large; an interrupted upload leaves no object)."""
    from connectorctl.adapters.storage.transfer import source_for

    metadata = _metadata(meta)
    data: Any = sys.stdin.buffer if local == "-" else Path(local)
    size = source_for(data).size
    storage = _storage(ctx, store)
    with _transfer(f"put {key}", size) as progress:
        stored = storage.put(key, data, content_type=content_type, metadata=metadata, progress=progress)
    _render_object(stored, fmt(output, as_json), f"stored in {storage.slug}")


@app.command("get")
def storage_get(
    ctx: typer.Context,
    key: str = KeyArg,
    local: Optional[str] = typer.Argument(
        None, metavar="LOCAL", help="Where to write it (default: the key's file name here); - for stdout."
    ),
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Download an object to a file (replaced only once complete) or to stdout."""
    from connectorctl.domain.storage import check_key

    storage = _storage(ctx, store)
    check_key(key)
    to_stdout = local == "-"
    target: Any = sys.stdout.buffer if to_stdout else Path(local or key.rsplit("/", 1)[-1])
    if not to_stdout and (target.is_dir() or (local or "").endswith("/")):
        target = target / key.rsplit("/", 1)[-1]
    with _transfer(f"get {key}", None) as progress:
        got = storage.download_to(key, target, progress=progress)
    if to_stdout:
        stderr().print(f"{got.key}: {got.size} bytes from {storage.slug}", highlight=False)
        return
    _render_object(got, fmt(output, as_json), f"saved to {target}")


@app.command("ls")
def storage_ls(
    ctx: typer.Context,
    prefix: str = typer.Argument("", metavar="PREFIX", help="Only keys starting with this text."),
    limit: Optional[int] = typer.Option(
        None, "--limit", "-n", min=1, max=10000, help="At most this many (one page); default: all.", metavar="N"
    ),
    after: Optional[str] = typer.Option(
        None, "--after", help="Start after this key (the next_token of a previous page).", metavar="KEY"
    ),
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """List objects in key order."""
    storage = _storage(ctx, store)
    if limit is None and after is None:
        objects, next_token = list(storage.iter_objects(prefix)), None
    else:
        page = storage.list(prefix, limit=limit or 1000, after=after)
        objects, next_token = list(page.objects), page.next_token
    rows = [o.to_dict() for o in objects]
    out = fmt(output, as_json)
    if next_token is not None and out is not OutputFormat.json:
        stderr().print(f"more objects follow: --after {next_token}", highlight=False, soft_wrap=True)

    def table() -> Any:
        from rich.markup import escape

        columns = (Column("key"), Column("size", right=True), Column("last modified (UTC)", drop=1))
        return grid(
            f"{storage.slug}: {escape(prefix) or '(all)'}",
            columns,
            ((escape(r["key"]), str(r["size"]), human_time(r["last_modified"])) for r in rows),
            caption=f"{len(rows)} objects",
        )

    where = f"under {prefix!r} " if prefix else ""
    render(
        out,
        {"objects": rows, "next_token": next_token} if out is OutputFormat.json else rows,
        table,
        empty=None if rows else f"no objects {where}in {storage.slug}; upload one: connectorctl storage put FILE KEY",
    )


@app.command("stat")
def storage_stat(
    ctx: typer.Context,
    key: str = KeyArg,
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Size, last modified, ETag, content type and user metadata of one object."""
    storage = _storage(ctx, store)
    _render_object(storage.head(key), fmt(output, as_json), f"{storage.slug}: {key}")


@app.command("rm")
def storage_rm(
    ctx: typer.Context,
    key: str = KeyArg,
    yes: bool = YesOption,
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Delete an object (asks first; --yes in scripts)."""
    storage = _storage(ctx, store)
    obj = storage.head(key)  # a mistyped key is an error, not a silent no-op
    confirm(f"delete {key} ({obj.size} bytes) from {storage.slug}?", yes)
    storage.delete(key)
    data = {**obj.to_dict(), "deleted": True}
    render(
        fmt(output, as_json), data, lambda: kv_table(f"deleted from {storage.slug}", [("key", key), ("size", obj.size)])
    )


@app.command("cp")
def storage_cp(
    ctx: typer.Context,
    source: str = typer.Argument(..., metavar="SOURCE"),
    target: str = typer.Argument(..., metavar="TARGET"),
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Copy an object inside the store (content type and metadata go along)."""
    storage = _storage(ctx, store)
    _render_object(storage.copy(source, target), fmt(output, as_json), f"copied in {storage.slug}")


@app.command("url")
def storage_url(
    ctx: typer.Context,
    key: str = KeyArg,
    expires: str = typer.Option(
        "1h", "--expires", help="How long the link works (30s, 10m, 2h, 7d at most).", metavar="DURATION"
    ),
    method: str = typer.Option(
        "GET", "--method", help="GET to download, PUT to let someone upload.", case_sensitive=False, metavar="METHOD"
    ),
    store: Optional[str] = StoreOption,
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """A presigned URL: anyone holding it can GET (or PUT) the object until it expires."""
    from connectorctl.store.queries import parse_duration

    seconds = parse_duration(expires, name="--expires")
    storage = _storage(ctx, store)
    url = storage.presign(key, expires_in=seconds, method=method)
    out = fmt(output, as_json)
    if out is OutputFormat.table:  # the bare URL, so that $(connectorctl storage url KEY) works
        sys.stdout.write(url.url + "\n")
        stderr().print(f"{url.method} {key}, valid until {url.to_dict()['expires_at']}", highlight=False)
        return
    render(out, url.to_dict(), lambda: None)
