"""``connectorctl init`` and ``connectorctl config show``."""

from __future__ import annotations

from importlib import resources
from typing import Any

import typer

from connectorctl.cli.output import (
    Column,
    JsonOption,
    OutputFormat,
    OutputOption,
    fmt,
    grid,
    render,
    show,
    state,
    stderr,
)
from connectorctl.cli.plain import CommandGroup

app = CommandGroup(help="Inspect the effective configuration.")


@app.command("show")
def config_show(ctx: typer.Context, output: OutputFormat = OutputOption, as_json: bool = JsonOption) -> None:
    """Print every effective setting and where its value came from."""
    from connectorctl.config import flatten, load_settings, source_of

    settings = load_settings(state(ctx).config_path)
    values = flatten(settings)
    path = str(settings.config_path) if settings.config_path else None
    shown = {k: {"value": v, "source": source_of(settings, k)} for k, v in values.items()}
    shown.update(_credential_sources(settings))
    data = {"config_path": path, "values": shown}

    def table() -> object:
        from rich.markup import escape

        def where(source: str) -> str:  # the file is named in the title: its lines need only their number
            return f"line {source[len(path) + 1 :]}" if path and source.startswith(f"{path}:") else source

        # where each value came from is what this command is for: the source column is never left out
        columns = (Column("key"), Column("value", wrap=True), Column("source", wrap=True))
        return grid(
            f"config: {path or '(no file, defaults)'}",
            columns,
            ((escape(key), escape(show(item["value"])), escape(where(item["source"]))) for key, item in shown.items()),
        )

    render(fmt(output, as_json), data, table)


def _credential_sources(settings: Any) -> dict[str, dict[str, Any]]:
    """``credentials.<slug>``: which fields each configured vendor's credential has and where they come from,
    never a value; plus the sender defaults taken from the environment (``MAIL_FROM_ADDRESS``...)."""
    from connectorctl.adapters.declaration import CHANNEL_SENDER_ENV
    from connectorctl.credentials.provider import store_provider
    from connectorctl.credentials.vendor_env import credential_env, sender_default, sender_env
    from connectorctl.gateway import Connector
    from connectorctl.store.health import configured_services

    out: dict[str, dict[str, Any]] = {}
    services = configured_services(settings)
    with Connector(settings) as connector:
        for slug in services:
            if credential_env(slug) or settings.vendor(slug).credentials:
                fields, where = store_provider(connector.credentials).source_of(slug)
                out[f"credentials.{slug}"] = {"value": fields, "source": where}
    for scope in [*CHANNEL_SENDER_ENV, *services]:
        for name in sender_env(scope):
            found = sender_default(scope, name)
            if found is not None:
                out[f"sender.{scope}.{name}"] = {"value": found[0], "source": found[1]}
    return out


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
    db = StateDB(settings.database)
    db.close()
    data = {
        "config_path": str(path),
        "config_written": written,
        "database": db.label,
        "outbox": str(settings.outbox_dir()),
    }
    render(fmt(output, as_json), data, lambda: _init_table(data))


def _init_table(data: dict) -> object:
    from connectorctl.cli.output import kv_table

    return kv_table("connectorctl initialised", [(k, v) for k, v in data.items()])
