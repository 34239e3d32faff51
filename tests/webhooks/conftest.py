"""Fixtures for the webhook tests; the cases themselves live in webhook_cases.py."""

from __future__ import annotations

import pytest

from tests.webhooks.webhook_cases import CASE_IDS, CASES, Case


@pytest.fixture(params=CASES, ids=CASE_IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param
