"""The ``webhooks:`` section of the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectorctl.config import WebhookSettings, load_settings
from connectorctl.errors import ConfigurationError
from tests.conftest import write_config


def test_webhooks_section_is_typed_with_defaults(home: Path) -> None:
    write_config(home, """
webhooks:
  stripe:
    scheme: stripe
    secret_env: [STRIPE_WHSEC, STRIPE_WHSEC_OLD]
  acme:
    scheme: generic
    secrets_from_creds: acme
    tolerance_seconds: 60
    header: X-Acme-Signature
    algorithm: sha512
    encoding: base64
    signed_content: "{timestamp}.{body}"
    timestamp_header: X-Acme-Timestamp
""")
    settings = load_settings()
    assert settings.webhooks["stripe"] == WebhookSettings(scheme="stripe", secret_env=("STRIPE_WHSEC", "STRIPE_WHSEC_OLD"))
    assert settings.webhooks["stripe"].tolerance_seconds == 300
    acme = settings.webhooks["acme"]
    assert (acme.secrets_from_creds, acme.tolerance_seconds, acme.algorithm, acme.timestamp_header) == ("acme", 60, "sha512", "X-Acme-Timestamp")


@pytest.mark.parametrize(("text", "message"), [
    ("webhooks:\n  x:\n    scheme: nope\n    secret_env: [A]\n", "webhooks.x.scheme"),
    ("webhooks:\n  x:\n    scheme: github\n", "secret_env"),
    ("webhooks:\n  x:\n    scheme: github\n    secret_env: A\n", "expected a list"),
    ("webhooks:\n  x:\n    scheme: github\n    secret_env: [A]\n    colour: red\n", "unknown key"),
])
def test_bad_webhook_settings_are_one_line_errors(home: Path, text: str, message: str) -> None:
    write_config(home, text)
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert message in str(err.value)
