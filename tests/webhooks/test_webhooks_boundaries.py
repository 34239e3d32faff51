"""Guards: vendor SDKs stay test-only, and the CLI's start-up does not pay for the webhook machinery."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDKS = {"stripe", "twilio", "standardwebhooks", "sendgrid", "mailgun", "easypost"}


def test_product_code_never_imports_a_vendor_sdk() -> None:
    offenders = []
    for path in (ROOT / "connectorctl").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in SDKS]
    assert offenders == []


def test_cli_help_does_not_import_webhook_dependencies() -> None:
    code = ("import sys; from connectorctl.cli.main import app; "
            "print(sorted(m for m in ('starlette', 'uvicorn', 'cryptography', 'connectorctl.webhooks.base', 'httpx') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
