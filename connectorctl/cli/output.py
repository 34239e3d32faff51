"""Shared CLI plumbing: output format options, rendering, and the one failure path.

Data goes to stdout, diagnostics to stderr; rich honours ``NO_COLOR``.
Every command renders one result object either as a table for people or as
JSON (the stable contract for scripts).
"""

from __future__ import annotations

import enum
import json
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from connectorctl.gateway import Connector


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


OutputOption = typer.Option(
    OutputFormat.table, "--output", "-o", help="table for people; json/jsonl for scripts.", case_sensitive=False
)
JsonOption = typer.Option(False, "--json", help="Shorthand for --output json.")


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


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = ctx.find_root().obj = CliState()
    return obj


_stdout: "Console | None" = None
_stderr: "Console | None" = None


def stdout() -> "Console":
    global _stdout
    if _stdout is None:
        from rich.console import Console

        _stdout = Console(soft_wrap=False)
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


def render(output: OutputFormat, data: Any, table: Callable[[], Any]) -> None:
    """Print ``data`` as JSON/JSONL, or the rich renderable that ``table()`` builds."""
    if output is OutputFormat.json:
        print_json(data)
    elif output is OutputFormat.jsonl:
        print_jsonl(data if isinstance(data, list) else [data])
    else:
        stdout().print(table())


def kv_table(title: str | None, rows: Iterable[tuple[str, Any]]) -> Any:
    from rich.table import Table

    t = Table(title=title, show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    for key, value in rows:
        t.add_row(key, "-" if value is None else str(value))
    return t


def read_stdin_text(what: str) -> str:
    """All of stdin as UTF-8 text; undecodable bytes are refused (a C locale would smuggle them in as surrogates)."""
    from connectorctl.errors import InvalidInputError

    data = (
        sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8", "surrogateescape")
    )
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


def warn_if_unknown_service(connector: "Connector", service: str | None) -> None:
    """A mistyped ``--service`` would otherwise read as "no traffic": say so on stderr (stdout stays data)."""
    if service is None:
        return
    from connectorctl.store.health import configured_services, is_known_service

    if not is_known_service(connector.db, connector.settings, service):
        known = ", ".join(configured_services(connector.settings))
        warn(f"no service {service!r} is configured, known or logged (configured: {known})")


def warn(message: str) -> None:
    stderr().print(f"[yellow]warning:[/yellow] {message}", highlight=False)


def fail(code: str, message: str, exit_code: int, hint: str | None = None) -> "typer.Exit":
    """Print one line (plus an optional hint) on stderr and return the Exit to raise."""
    from rich.markup import escape

    stderr().print(f"[red]error[/red] {escape(f'[{code}]')}: {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        stderr().print(f"  hint: {escape(hint)}", highlight=False, soft_wrap=True)
    return typer.Exit(exit_code)
