"""``connectorctl demo``: the whole product in a few seconds, on a throwaway home."""

from __future__ import annotations

import typer


def demo_command(
    keep: bool = typer.Option(False, "--keep", help="Keep the temporary home afterwards (its path is printed)."),
) -> None:
    """Run a local fake vendor with injected failures and watch retries, the circuit opening and recovering."""
    from connectorctl.demo import run_demo

    run_demo(keep=keep)
