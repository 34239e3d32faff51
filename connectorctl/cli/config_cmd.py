"""``connectorctl init`` and ``connectorctl config show``."""

from __future__ import annotations

from importlib import resources

import typer

from connectorctl.cli.output import JsonOption, OutputFormat, OutputOption, fmt, render, state, stderr

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@app.command("show")
def config_show(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Print every effective setting and where its value came from."""
    from connectorctl.config import flatten, load_settings, source_of

    settings = load_settings(state(ctx).config_path)
    values = flatten(settings)
    shown = {k: {"value": v, "source": source_of(settings, k)} for k, v in values.items()}
    data = {"config_path": str(settings.config_path) if settings.config_path else None, "values": shown}

    def table() -> object:
        from rich.table import Table

        t = Table(title=f"config: {data['config_path'] or '(no file, defaults)'}")
        t.add_column("key", style="bold")
        t.add_column("value")
        t.add_column("source", style="dim")
        for key, item in shown.items():
            t.add_row(key, "-" if item["value"] is None else str(item["value"]), item["source"])
        return t

    render(fmt(output, as_json), data, table)


def init(
    ctx: typer.Context,
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config file."),
    output: OutputFormat = OutputOption,
    as_json: bool = JsonOption,
) -> None:
    """Write a starter config and create the state database."""
    from connectorctl.config import load_settings, resolve_config_path
    from connectorctl.errors import ConfigurationError
    from connectorctl.store.db import StateDB

    path, _ = resolve_config_path(state(ctx).config_path)
    assert path is not None
    written = False
    if path.exists() and not force:
        stderr().print(f"config {path} already exists; keeping it (use --force to overwrite)", highlight=False)
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                resources.files("connectorctl").joinpath("starter_config.yaml").read_text(encoding="utf-8"),
                encoding="utf-8",
            )
        except OSError as exc:
            raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from None
        written = True
    settings = load_settings(path)
    StateDB(settings.database).close()
    data = {
        "config_path": str(path),
        "config_written": written,
        "database": str(settings.database),
        "outbox": str(settings.outbox_dir()),
    }
    render(fmt(output, as_json), data, lambda: _init_table(data))


def _init_table(data: dict) -> object:
    from connectorctl.cli.output import kv_table

    return kv_table("connectorctl initialised", [(k, v) for k, v in data.items()])
