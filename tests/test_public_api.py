"""The front door: curated exports, and every CLI command documented."""

from __future__ import annotations

import subprocess
import sys

import typer

import connectorctl
from connectorctl.cli.main import app
from tests.conftest import ROOT


def test_exports_resolve_and_are_sorted() -> None:
    assert connectorctl.__all__ == sorted(connectorctl.__all__)
    for name in connectorctl.__all__:
        assert getattr(connectorctl, name) is not None, name


def test_public_roles_are_satisfied_by_the_gateways() -> None:
    from connectorctl.gateway import EmailGateway, SmsGateway

    for role, impl in ((connectorctl.EmailService, EmailGateway), (connectorctl.SmsService, SmsGateway)):
        for method in ("send", "send_bulk"):
            assert callable(getattr(impl, method)), (role, method)


def test_every_store_is_a_cloud_storage(home) -> None:  # type: ignore[no-untyped-def]
    with connectorctl.Connector() as connector:
        for store in ("local", "s3"):
            assert isinstance(connector.storage(store), connectorctl.CloudStorage), store


def test_every_command_has_help_text() -> None:
    def walk(command, path: str) -> None:  # type: ignore[no-untyped-def]
        assert (command.help or command.short_help or "").strip(), f"{path} has no help"
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "connectorctl")


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; from connectorctl.cli.main import run; run(['--help']); "
            "heavy = [m for m in ('httpx', 'sqlite_utils', 'keyring', 'tenacity', 'yaml', 'cryptography', 'email_validator', 'phonenumbers') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "HEAVY []" in out, out


def test_fast_help_is_exactly_typers_help_for_every_command(capsys) -> None:  # type: ignore[no-untyped-def]
    from connectorctl.cli.main import _print_help_directly

    def paths(command, prefix: list[str]):  # type: ignore[no-untyped-def]
        yield prefix
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, [*prefix, name])

    checked = 0
    for path in paths(typer.main.get_command(app), []):
        capsys.readouterr()
        try:
            typer.main.get_command(app).main(args=[*path, "--help"], prog_name="connectorctl", standalone_mode=False)
        except SystemExit:
            pass
        expected = capsys.readouterr().out
        assert _print_help_directly([*path, "--help"])
        assert capsys.readouterr().out.rstrip("\n") == expected.rstrip("\n"), path
        checked += 1
    assert checked > 30


def test_subcommand_help_does_not_import_pydantic() -> None:
    code = ("import sys; from connectorctl.cli.main import run; run(['send', 'email', '--help']); "
            "print('PYDANTIC', 'pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "PYDANTIC False" in out, out
