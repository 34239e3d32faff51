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
    from connectorctl.payments.service import PaymentService

    for method in ("charge", "capture", "cancel", "refund", "retrieve", "reconcile"):
        assert callable(getattr(PaymentService, method)), method


def test_every_store_is_a_cloud_storage(home) -> None:  # type: ignore[no-untyped-def]
    with connectorctl.Connector() as connector:
        for store in ("local", "s3"):
            assert isinstance(connector.storage(store), connectorctl.CloudStorage), store


def test_every_command_has_help_text() -> None:
    def walk(command, path: str) -> int:  # type: ignore[no-untyped-def]
        assert (command.help or command.short_help or "").strip(), f"{path} has no help"
        if not hasattr(command, "list_commands"):
            return 1
        return 1 + sum(walk(command.get_command(None, name), f"{path} {name}") for name in command.list_commands(None))

    assert walk(typer.main.get_command(app), "connectorctl") > 30


def test_help_does_not_import_heavy_modules() -> None:
    code = ("import sys; from connectorctl.cli.main import run; run(['--help']); "
            "heavy = [m for m in ('httpx', 'sqlite_utils', 'keyring', 'tenacity', 'yaml', 'cryptography', 'email_validator', 'phonenumbers') if m in sys.modules]; "
            "print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    assert "HEAVY []" in out, out




def test_subcommand_help_loads_only_its_own_group() -> None:
    code = ("import sys; from connectorctl.cli.main import run; run(['send', 'email', '--help']); "
            "print('LOADED', sorted(m for m in sys.modules if m.startswith('connectorctl.cli.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60).stdout
    loaded = out.rsplit("LOADED", 1)[1]
    assert "connectorctl.cli.send'" in loaded
    assert not any(f"connectorctl.cli.{other}'" in loaded for other in ("creds", "logs", "circuit", "serve", "webhook", "metrics")), loaded
