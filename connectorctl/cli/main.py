"""Wires the command groups; everything heavy is imported inside the commands."""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import typer

from connectorctl.cli import config_cmd, send, serve
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
app.command("init")(config_cmd.init)
app.command("serve")(serve.serve)


@app.callback()
def root(
    ctx: typer.Context,
    config: Optional[str] = typer.Option(None, "--config", "-c", help="Config file (else $CONNECTORCTL_CONFIG, else $CONNECTORCTL_HOME/config.yaml).", metavar="PATH"),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.", envvar="CONNECTORCTL_DEBUG"),
) -> None:
    ctx.obj = CliState(config_path=config, debug=debug)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; every known error becomes one line on stderr."""
    import click

    from connectorctl.errors import ConnectorctlError

    args = list(sys.argv[1:] if argv is None else argv)
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
    except click.exceptions.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except click.exceptions.ClickException as exc:
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
    return result if isinstance(result, int) else 0


def _exit_code(exit_: typer.Exit) -> int:
    return exit_.exit_code


def main() -> None:
    sys.exit(run())
