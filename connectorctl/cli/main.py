"""Wires the command groups; everything heavy is imported inside the commands."""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import typer

from connectorctl.cli import circuit, config_cmd, creds, demo, logs, metrics, send, serve, status, storage, webhook
from connectorctl.cli.output import CliState, fail

app = typer.Typer(
    name="connectorctl",
    help="The one gateway from an ERP to every outside vendor: send, inspect, operate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(send.app, name="send")
app.add_typer(config_cmd.app, name="config")
app.add_typer(webhook.app, name="webhook")
app.add_typer(creds.app, name="creds")
app.command("init")(config_cmd.init)
app.add_typer(logs.app, name="logs")
app.command("metrics")(metrics.metrics_command)
app.command("status")(status.status_command)
app.add_typer(circuit.app, name="circuit")
app.command("demo")(demo.demo_command)
app.command("serve")(serve.serve)
app.add_typer(storage.app, name="storage")


@app.callback()
def root(
    ctx: typer.Context,
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Config file (else $CONNECTORCTL_CONFIG, else $CONNECTORCTL_HOME/config.yaml).", metavar="PATH"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.", envvar="CONNECTORCTL_DEBUG"),
) -> None:
    ctx.obj = CliState(config_path=config, debug=debug)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; every known error becomes one line on stderr."""
    try:  # typer >= 0.20 ships its own copy of click
        from typer._click import exceptions as click_exceptions
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as click_exceptions

    from connectorctl.errors import ConnectorctlError

    args = list(sys.argv[1:] if argv is None else argv)
    undecodable = next((a for a in args if not a.isascii() and not _is_utf8(a)), None)
    if undecodable is not None:  # bytes that are not UTF-8 reach Python as lone surrogates, which nothing can store or send
        return _exit_code(fail("invalid_input", f"argument {ascii(undecodable)} is not valid UTF-8 text", 2))
    if _print_help_directly(args):
        return 0
    debug = "--debug" in args or os.environ.get("CONNECTORCTL_DEBUG", "") not in ("", "0", "false")
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
    except click_exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, not a traceback
        if debug:
            raise
        return _exit_code(fail("internal_error", f"{type(exc).__name__}: {exc}", 1, "re-run with --debug for the traceback"))
    if result == 130:  # Typer turns Ctrl-C into a silent exit 130; say why, as the KeyboardInterrupt branch does
        sys.stderr.write("interrupted\n")
    return result if isinstance(result, int) else 0


_ROOT_OPTIONS_WITH_VALUE = {"--config", "-c"}


def _print_help_directly(args: list[str]) -> bool:
    """Render ``--help`` for a (sub)command without parsing its parameters.

    Typer coerces every parsed parameter through pydantic, whose import costs
    ~80 ms, and builds the whole command tree; help for one group needs
    neither: resolve the command path from the leading words, build only that
    group and let Typer format its help.  Anything unusual falls back to the
    normal path.
    """
    if not any(a in ("--help", "-h") for a in args) or "--" in args:
        return False
    try:
        from typer._click.core import Context
    except ImportError:  # older typer runs on click itself
        from click.core import Context
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg in _ROOT_OPTIONS_WITH_VALUE and not words:
            next(rest, None)
        elif arg == "--debug" and not words:
            continue
        elif arg.startswith("-"):
            break  # --help, or an option of the subcommand: its help is what click would show too
        else:
            words.append(arg)
    group = next((g for g in app.registered_groups if len(words) > 1 and g.name == words[0]), None)
    if group is None:  # the root, a top-level command or group, or an unknown word: the whole tree
        command, names = typer.main.get_command(app), words
        ctx = Context(command, info_name="connectorctl", **command.context_settings)
    else:
        from typer.core import TyperGroup

        root = TyperGroup(name="connectorctl", context_settings=app.info.context_settings)
        parent = Context(root, info_name="connectorctl", **root.context_settings)
        command, names = typer.main.get_group(group.typer_instance), words[1:]
        ctx = Context(command, info_name=group.name, parent=parent, **command.context_settings)
    for name in names:
        sub = command.get_command(ctx, name) if hasattr(command, "get_command") else None
        if sub is None:
            return False  # let the normal path report the unknown command
        command, ctx = sub, Context(sub, info_name=name, parent=ctx, **sub.context_settings)
    sys.stdout.write(command.get_help(ctx) + "\n")
    return True


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
    sys.exit(run())
