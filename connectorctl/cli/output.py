"""Shared CLI plumbing: output format options, rendering, and the one failure path.

Data goes to stdout, diagnostics to stderr; rich honours ``NO_COLOR``.
Every command renders one result object either as a table for people or as
JSON (the stable contract for scripts).

Tables never cut a value someone may copy (ids, statuses, times, names,
signatures).  On a narrow terminal the least useful columns are left out
(and the caption says which); free text wraps.  When stdout is not a
terminal there is no width limit at all, so ``| awk``/``| grep`` see whole
values, as with ``gh`` and ``kubectl``.  Times in tables are UTC as
``2026-12-05 09:17:27``; JSON carries RFC 3339 UTC (``...T09:17:27.420Z``).
"""

from __future__ import annotations

import enum
import io
import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional, Sequence

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from connectorctl.gateway import Connector


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


OutputOption = typer.Option(
    OutputFormat.table,
    "--output",
    "-o",
    help="table for people; json/jsonl for scripts.",
    case_sensitive=False,
    metavar="FORMAT",
)
JsonOption = typer.Option(False, "--json", help="Shorthand for --output json.")
YesOption = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")


def fmt(output: OutputFormat, as_json: bool) -> OutputFormat:
    return OutputFormat.json if as_json else output


@dataclass
class CliState:
    config_path: Optional[str] = None
    debug: bool = False
    _connector: Any = field(default=None, repr=False)

    def connector(self) -> "Connector":
        if self._connector is None:
            from connectorctl.gateway import Connector

            self._connector = Connector(config_path=self.config_path)
        return self._connector

    def settings(self) -> Any:
        return self.connector().settings

    def close(self) -> None:
        if self._connector is not None:
            self._connector.close()
            self._connector = None


def bind_state(ctx: typer.Context, cli_state: CliState) -> CliState:
    """Make ``cli_state`` the invocation's state; its Connector (pools, connections, clients) is closed when the
    command ends, so a CLI run inside a long-lived process (``connectorctl.cli.main.run``) leaves nothing open."""
    root = ctx.find_root()
    root.obj = cli_state
    root.call_on_close(cli_state.close)
    return cli_state


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, CliState) else bind_state(ctx, CliState())


_stdout: "Console | None" = None
_stderr: "Console | None" = None


# what an empty log or list suggests
FIRST_SEND = "connectorctl send email --to you@example.com --subject Hi --body Hello"
PIPE_WIDTH = 100_000  # "no limit": a pipe gets whole values, however long


class _TrimmedLines(io.StringIO):
    """stdout for a pipe: table rows without the padding after their last value.

    A StringIO only to be a text stream to rich; nothing is kept in it, every write goes to stdout.
    """

    def write(self, text: str) -> int:
        import re

        return sys.stdout.write(re.sub(r" +(?=\n)", "", text))

    def flush(self) -> None:
        sys.stdout.flush()


def stdout() -> "Console":
    global _stdout
    if _stdout is None:
        from rich.console import Console

        # soft wrap: a line of text is never cut nor broken by us; the terminal wraps it (tables still fit)
        _stdout = Console(soft_wrap=True)
        if not _stdout.is_terminal:
            _stdout = Console(soft_wrap=True, width=PIPE_WIDTH, file=_TrimmedLines(), force_terminal=False)
    return _stdout


def stderr() -> "Console":
    global _stderr
    if _stderr is None:
        from rich.console import Console

        _stderr = Console(stderr=True)
    return _stderr


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_jsonl(rows: Iterable[Any]) -> None:
    for row in rows:
        sys.stdout.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def render(output: OutputFormat, data: Any, table: Callable[[], Any], *, empty: str | None = None) -> None:
    """Print ``data`` as JSON/JSONL, or the rich renderable that ``table()`` builds.

    ``empty`` is given when there is nothing to show: what a person should
    do next, said on stderr instead of an empty table (scripts still get the
    empty data).
    """
    if output is OutputFormat.json:
        print_json(data)
    elif output is OutputFormat.jsonl:
        print_jsonl(data if isinstance(data, list) else [data])
    elif empty is not None:
        stderr().print(empty, highlight=False, soft_wrap=True)
    else:
        stdout().print(table())


def show(value: Any) -> str:
    """One way to print a value in a table: ``-`` for nothing, ``yes``/``no`` for booleans, lists comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(show(v) for v in value) or "-"
    return str(value)


def styled(markup: str) -> Any:
    """A styled value for :func:`kv_table` (whose plain strings are never read as markup)."""
    from rich.text import Text

    return Text.from_markup(markup)


def human_time(value: str | None) -> str:
    """The table form of an RFC 3339 UTC time: ``2026-12-05 09:17:27`` (UTC, whole seconds)."""
    if not value:
        return "-"
    return value.replace("T", " ")[:19]


@dataclass(frozen=True)
class Column:
    """A table column.  ``drop`` > 0 may be left out on a narrow terminal (highest first);
    ``wrap`` columns hold free text that may wrap; all others keep whole values on one line."""

    header: str
    drop: int = 0
    wrap: bool = False
    right: bool = False


WRAP_MIN = 16  # a wrapping column narrower than this is unreadable: drop another column first
WORD_MAX = 40  # a wrapping column keeps its longest word whole up to this width (a longer one is folded)


def grid(
    title: str | None,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    header: bool = True,
    widths: Sequence[int] | None = None,
) -> Any:
    """A table that fits the terminal without cutting values (see the module docstring).

    Cells are rich markup strings.  ``widths`` pins minimum column widths so
    batches printed one after another (``logs tail -f``) line up.
    """
    from rich.table import Table
    from rich.text import Text

    rows = [list(r) for r in rows]
    texts = [[Text.from_markup(c) for c in row] for row in rows]
    plain = [[t.cell_len for t in row] for row in texts]
    # narrower than its longest word, a wrapping column would fold words (a path, a variable name) mid-way
    words = [
        max((len(w) for row in texts for w in row[i].plain.split()), default=0) if c.wrap else 0
        for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))
    console = stdout()
    fits = True
    while console.is_terminal:
        need = comfortable = 2 * (len(shown) - 1)  # the least width that keeps whole values; the width that keeps words
        for i in shown:
            natural = max(len(columns[i].header) if header else 0, widths[i] if widths else 0, *(p[i] for p in plain))
            need += min(natural, WRAP_MIN) if columns[i].wrap else natural
            comfortable += min(natural, max(WRAP_MIN, min(words[i], WORD_MAX))) if columns[i].wrap else natural
        droppable = [i for i in shown if columns[i].drop]
        fits = need <= console.width
        if comfortable <= console.width or not droppable:
            break
        shown.remove(max(droppable, key=lambda i: columns[i].drop))
    hidden = [c.header for i, c in enumerate(columns) if i not in shown]
    if hidden:
        note = f"not shown at this width: {', '.join(hidden)} (-o json has everything)"
        caption = f"{caption}; {note}" if caption else note
    # titles and captions wrap within the table (the console's soft wrap would let them run past the terminal's edge)
    table = Table(
        title=_wrapping(title),
        caption=_wrapping(caption),
        show_header=header,
        box=None,
        pad_edge=False,
        header_style="bold",
    )
    for i in shown:
        col = columns[i]
        # a table that cannot fit even so folds its long values onto more lines rather than cut them
        table.add_column(
            col.header,
            justify="right" if col.right else "left",
            no_wrap=fits and not col.wrap,
            overflow="fold",
            min_width=widths[i] if widths else None,
        )
    for row in rows:
        table.add_row(*(row[i] for i in shown))
    return table


def _wrapping(text: str | None) -> Any:
    """A title or caption that wraps at the table's width, even on the soft-wrapping console (which would crop it)."""
    from rich.text import Text

    if text is None:
        return None
    wrapped = Text.from_markup(text, overflow="fold")
    wrapped.no_wrap = False
    return wrapped


class _Pairs:
    """Key/value lines whose values are never cut: a long one runs on and the terminal wraps it."""

    def __init__(self, title: str | None, rows: list[tuple[str, Any]]) -> None:
        self.title, self.rows = title, rows

    def __rich_console__(self, console: Any, options: Any) -> Any:
        from rich.text import Text

        if self.title:
            yield Text(self.title, style="italic")
        width = max((len(k) for k, _ in self.rows), default=0)
        for key, value in self.rows:
            yield Text.assemble((key.ljust(width), "bold"), "  ", value if isinstance(value, Text) else show(value))


def kv_table(title: str | None, rows: Iterable[tuple[str, Any]]) -> Any:
    """Values are shown as plain text via :func:`show`; pass a ``rich.text.Text`` for a styled one."""
    return _Pairs(title, [(k, v) for k, v in rows])


def read_stdin_text(what: str, limit: int = 10 * 1024 * 1024) -> str:
    """All of stdin (at most ``limit`` bytes) as UTF-8 text; undecodable bytes are refused (a C locale would
    smuggle them in as surrogates)."""
    from connectorctl.errors import InvalidInputError
    from connectorctl.validation import read_limited

    if hasattr(sys.stdin, "buffer"):
        data = read_limited(sys.stdin.buffer, what, limit)
    else:
        data = sys.stdin.read(limit + 1).encode("utf-8", "surrogateescape")
        if len(data) > limit:
            raise InvalidInputError(f"{what} is larger than {limit // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{what} from stdin is not UTF-8 text (byte {exc.start})") from None


def parse_header_options(items: Iterable[str]) -> list[tuple[str, str]]:
    """``--header 'Name: value'`` options as pairs.

    A malformed one is named by its first word only: header values are often
    credentials, and a missing colon must not print one to the terminal.
    """
    from connectorctl.errors import InvalidInputError

    headers = []
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            first_word = (item.split() or [""])[0].split(":")[0][:40]
            raise InvalidInputError(f"--header must look like 'Name: value', got one starting {first_word!r}")
        headers.append((name.strip(), value.strip()))
    return headers


ServiceArgument = typer.Argument(
    None, metavar="SERVICE", help="Vendor slug, e.g. sendgrid (or give --service).", show_default=False
)
ServiceOption = typer.Option(None, "--service", help="Vendor slug (the same as the SERVICE argument).", metavar="SLUG")


def required_service(positional: str | None, option: str | None) -> str:
    from connectorctl.errors import InvalidInputError

    service = one_service(positional, option)
    if service is None:
        raise InvalidInputError("which service? give it as SERVICE or --service, e.g. sendgrid")
    return service


def one_service(positional: str | None, option: str | None) -> str | None:
    """``SERVICE`` as a positional shortcut or ``--service`` (as the logs commands take it); not two different ones."""
    from connectorctl.errors import InvalidInputError

    if positional is not None and option is not None and positional != option:
        raise InvalidInputError(f"two services given: {positional!r} and --service {option!r}")
    return option if option is not None else positional


def warn_if_unknown_service(connector: "Connector", service: str | None) -> None:
    """A mistyped ``--service`` would otherwise read as "no traffic": say so on stderr (stdout stays data)."""
    if service is None:
        return
    from connectorctl.store.health import configured_services, is_known_service

    if not is_known_service(connector.db, connector.settings, service):
        known = ", ".join(configured_services(connector.settings))
        warn(f"no service {service!r} is configured, known or logged (configured: {known})")


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive step at a terminal; ``--yes`` answers in advance.

    Without a terminal nobody can answer: a script or cron line chose to run the
    command, so it goes ahead, as ``logs purge`` from cron always has.
    """
    if yes or not sys.stdin.isatty():
        return
    from rich.text import Text

    answer = stderr().input(Text(f"{question} [y/N] "))  # plain: no markup, no highlighting inside "[y/N]"
    if answer.strip().lower() not in ("y", "yes"):
        stderr().print("aborted: nothing changed", highlight=False)
        raise typer.Exit(1)


def warn(message: str) -> None:
    from rich.markup import escape

    stderr().print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


MAX_ERROR_CHARS = 1000


def fail(code: str, message: str, exit_code: int, hint: str | None = None) -> "typer.Exit":
    """Print one line (plus an optional hint) on stderr and return the Exit to raise.

    A message quotes what the user gave, which may be an environment variable 100 KB long or a
    path with a line break in it: still one line, and cut in the middle (where the value sits,
    between what was wrong and how to fix it) to a length a person reads.
    """
    from rich.markup import escape

    message = message.strip().replace("\r", "\\r").replace("\n", "\\n")
    if len(message) > MAX_ERROR_CHARS:
        half = MAX_ERROR_CHARS // 2
        message = f"{message[:half]}...({len(message) - 2 * half} characters cut)...{message[-half:]}"
    stderr().print(f"[red]error[/red] {escape(f'[{code}]')}: {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        stderr().print(f"  hint: {escape(hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(exit_code)
