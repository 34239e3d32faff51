"""``connectorctl init`` and ``connectorctl config show``."""

from __future__ import annotations

from importlib import resources

import typer

from connectorctl.cli.output import Column, JsonOption, OutputFormat, OutputOption, fmt, grid, render, show, state, stderr

app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True, rich_markup_mode=None)


@app.command("show")
def config_show(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Print every effective setting and where its value came from."""
    from connectorctl.config import flatten, load_settings, source_of

    settings = load_settings(state(ctx).config_path)
    values = flatten(settings)
    data = {
        "config_path": str(settings.config_path) if settings.config_path else None,
        "values": {k: {"value": v, "source": source_of(settings, k)} for k, v in values.items()},
    }

    def table() -> object:
        from rich.markup import escape

        path = data["config_path"]

        def where(source: str) -> str:  # the file is named in the title: its lines need only their number
            return f"line {source[len(path) + 1:]}" if path and source.startswith(f"{path}:") else source

        columns = (Column("key"), Column("value", wrap=True), Column("source", drop=1, wrap=True))
        return grid(f"config: {path or '(no file, defaults)'}", columns, (
            (escape(key), escape(show(item["value"])), escape(where(item["source"]))) for key, item in data["values"].items()))

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
            path.write_text(resources.files("connectorctl").joinpath("starter_config.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot write {path}: {exc.strerror}") from None
        written = True
    settings = load_settings(path)
    StateDB(settings.database).close()
    data = {"config_path": str(path), "config_written": written, "database": str(settings.database), "outbox": str(settings.outbox_dir())}
    render(fmt(output, as_json), data, lambda: _init_table(data))


def _init_table(data: dict) -> object:
    from connectorctl.cli.output import kv_table

    return kv_table("connectorctl initialised", [(k, v) for k, v in data.items()])



