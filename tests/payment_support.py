"""Installations wired to the local payment fakes, for the payment tests."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from connectorctl import Connector

from tests.conftest import write_config
from tests.fake_paypal import CLIENT_ID, CLIENT_SECRET
from tests.fake_stripe import API_KEY

# Short waits so retry tests run fast; everything else at its default.
RETRY = "retry_policy: {initial_delay_ms: 10, max_delay_ms: 50, jitter: false}\n"


def payment_config(home: Path, *, stripe_url: str | None = None, paypal_url: str | None = None, chain: str = "stripe",
                   extra: str = "", timeout: float = 5) -> Path:
    """A config for ``chain`` with the fakes' URLs; credentials come from env vars (see :func:`payment_env`)."""
    text = f"payment_vendor: {chain}\n{RETRY}vendors:\n"
    if stripe_url:
        text += (f"  stripe:\n    base_url: {stripe_url}\n    api_version: '2024-06-20'\n    timeout_seconds: {timeout}\n"
                 "    credentials: {api_key: 'env:TEST_STRIPE_KEY'}\n")
    if paypal_url:
        text += (f"  paypal:\n    base_url: {paypal_url}\n    token_url: {paypal_url}/v1/oauth2/token\n    timeout_seconds: 5\n"
                 "    auth_method: oauth2\n    credentials: {client_id: 'env:TEST_PAYPAL_ID', client_secret: 'env:TEST_PAYPAL_SECRET'}\n")
    return write_config(home, text + extra)


def payment_env() -> dict[str, str]:
    return {"TEST_STRIPE_KEY": API_KEY, "TEST_PAYPAL_ID": CLIENT_ID, "TEST_PAYPAL_SECRET": CLIENT_SECRET}


@contextmanager
def payment_connector(home: Path, monkeypatch: pytest.MonkeyPatch, **config: Any) -> Iterator[Connector]:
    """A Connector on a fresh installation configured by :func:`payment_config`, with the fakes' credentials in the env."""
    for name, value in payment_env().items():
        monkeypatch.setenv(name, value)
    payment_config(home, **config)
    with Connector() as connector:
        yield connector
