"""Wires the command groups; a group's module is imported only when that group is used.

The root is Click's documented lazily loaded group ("Lazily Loading
Subcommands" in Click's docs) on Typer's public group class: ``connectorctl
send email --help`` imports and builds the ``send`` group alone, not the whole
tree.  Everything heavy is imported inside the commands themselves.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Callable, Optional, Protocol, Sequence, TextIO, TypeGuard

import typer
from typer.core import TyperGroup

from connectorctl.cli.output import CliState, bind_state, fail
from connectorctl.cli.plain import PlainCommand

# name -> "module:attribute": a Typer app (a group) or a function (one command), in help order:
# the order people reach for them
COMMANDS = {
    "send": "connectorctl.cli.send:app",
    "logs": "connectorctl.cli.logs:app",
    "metrics": "connectorctl.cli.metrics:metrics_command",
    "status": "connectorctl.cli.status:status_command",
    "circuit": "connectorctl.cli.circuit:app",
    "creds": "connectorctl.cli.creds:app",
    "config": "connectorctl.cli.config_cmd:app",
    "serve": "connectorctl.cli.serve:serve",
    "webhook": "connectorctl.cli.webhook:app",
    "init": "connectorctl.cli.config_cmd:init",
    "demo": "connectorctl.cli.demo:demo_command",
    "messages": "connectorctl.cli.messages:app",
    "outbox": "connectorctl.cli.outbox:app",
    "suppressions": "connectorctl.cli.suppressions:app",
    "payments": "connectorctl.cli.payments:app",
    "ship": "connectorctl.cli.ship:app",
    "storage": "connectorctl.cli.storage:app",
    "inbound": "connectorctl.cli.inbound:app",
    "db": "connectorctl.cli.db:app",
}


class LazyGroup(TyperGroup):
    """Looks a command up in :data:`COMMANDS` and builds it on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, _, attribute = COMMANDS[cmd_name].partition(":")
            found = getattr(importlib.import_module(module), attribute)
            if not isinstance(found, typer.Typer):
                single = typer.Typer(add_completion=False, rich_markup_mode=None)
                single.command(cmd_name, cls=PlainCommand)(found)
                command = typer.main.get_command(single)
            else:
                command = typer.main.get_group(found)
            command.name = cmd_name
            self.add_command(command)
        return self.commands.get(cmd_name)


app = typer.Typer(
    name="connectorctl",
    cls=LazyGroup,
    help="The one gateway from an ERP to every outside vendor: send, inspect, operate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("connectorctl")
        except PackageNotFoundError:  # run from a source tree that was never installed
            number = "unknown"
        sys.stdout.write(f"connectorctl {number}\n")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Optional[str] = typer.Option(
        None,
        "--config",
        "-c",
        help="Config file (else $CONNECTORCTL_CONFIG, else $CONNECTORCTL_HOME/config.yaml).",
        metavar="PATH",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.", envvar="CONNECTORCTL_DEBUG"),
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    bind_state(ctx, CliState(config_path=config, debug=debug))


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; every known error becomes one line on stderr."""
    from connectorctl.errors import ConnectorctlError

    args = list(sys.argv[1:] if argv is None else argv)
    undecodable = next((a for a in args if not a.isascii() and not _is_utf8(a)), None)
    if (
        undecodable is not None
    ):  # bytes that are not UTF-8 reach Python as lone surrogates, which nothing can store or send
        return _exit_code(fail("invalid_input", f"argument {ascii(undecodable)} is not valid UTF-8 text", 2))
    debug = "--debug" in args or os.environ.get("CONNECTORCTL_DEBUG", "") not in ("", "0", "false")
    _show_config_warnings_plainly()
    try:
        result = typer.main.get_command(app).main(args=args, prog_name="connectorctl", standalone_mode=False)
    except ConnectorctlError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        code = getattr(exc, "code", "error")
        hint = getattr(exc, "hint", None)
        return _exit_code(fail(code, exc.message, exc.exit_code, hint))
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if _is_usage_error(exc):
            if exc.exit_code == 2 and not _is_bare_group(exc):  # bad or unknown option, command or value
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else "connectorctl"
                return _exit_code(fail("usage", exc.format_message(), 2, f"{where} --help"))
            exc.show()
            return exc.exit_code
        if debug:
            raise
        return _exit_code(
            fail("internal_error", f"{type(exc).__name__}: {exc}", 1, "re-run with --debug for the traceback")
        )
    if result == 130:  # Typer turns Ctrl-C into a silent exit 130; say why, as the KeyboardInterrupt branch does
        sys.stderr.write("interrupted\n")
    return result if isinstance(result, int) else 0


class _UsageError(Protocol):
    exit_code: int

    def show(self) -> None: ...

    def format_message(self) -> str: ...


def _is_usage_error(exc: Exception) -> TypeGuard[_UsageError]:
    """A Click usage or parameter error, by Click's documented ``ClickException`` interface.

    Typer ships Click under a private module name, so the class itself cannot be
    imported through a public path; what it promises (``show()``, ``exit_code``) can.
    """
    return callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int)


def _is_bare_group(exc: _UsageError) -> bool:
    """A group run without a command (``connectorctl creds``): Click answers with the group's help, which is
    shown as it is, not as an error line."""
    ctx = getattr(exc, "ctx", None)
    return ctx is not None and exc.format_message() == ctx.get_help()


def _show_config_warnings_plainly() -> None:
    """A ConfigWarning is one ``warning:`` line on stderr, like every other diagnostic, not Python's warning format."""
    import warnings

    from connectorctl.envcheck import ConfigWarning

    global _plain_showwarning
    if _plain_showwarning is not None and warnings.showwarning is _plain_showwarning:
        return
    original = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, ConfigWarning):
            from connectorctl.cli.output import warn

            warn(str(message))
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = _plain_showwarning = show


_plain_showwarning: Callable[..., None] | None = None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _exit_code(exit_: typer.Exit) -> int:
    return exit_.exit_code


def main() -> None:
    import signal

    if hasattr(signal, "SIGPIPE"):
        # `connectorctl logs list | head`: end quietly on a closed pipe, like cat or grep do.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # A file name that is not UTF-8 (a home, an attachment) reaches Python as lone surrogates and may
        # be stored and shown back: printed as \udcff, as stderr already does, instead of ending in a crash.
        sys.stdout.reconfigure(errors="backslashreplace")
    sys.exit(run())
