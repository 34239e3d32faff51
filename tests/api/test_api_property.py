"""Property run over the OpenAPI document: any parameters, valid or not, never give a 5xx.

Strategies are derived from each documented parameter's schema (valid values,
boundary values just outside it, and arbitrary text), and every response must
be one the document lists for that operation.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from connectorctl.api import create_app
from connectorctl.api.openapi import DOCUMENT
from connectorctl.gateway import Connector

ANY_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
DATES = st.one_of(
    st.datetimes().map(lambda d: d.isoformat()),
    st.dates().map(str),
    st.sampled_from(["now", "-30days", "7d", "-1h", "90m", "2027-01-15T07:50:00Z", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "-1e308days"]),
)


def value_strategy(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    options: list[st.SearchStrategy[str]] = [ANY_TEXT]
    if "enum" in schema:
        options.append(st.sampled_from([str(v) for v in schema["enum"]]))
    if schema.get("type") == "integer":
        low, high = schema.get("minimum", -(10**6)), schema.get("maximum", 10**6)
        options += [st.integers(low, high).map(str), st.integers(-(10**20), 10**20).map(str), st.sampled_from([str(low - 1), str(high + 1), "1.5", " 7", "0x10"])]
    if schema.get("format") == "date-time" or "default" in schema and isinstance(schema["default"], str):
        options.append(DATES)
    return st.one_of(options)


def query_strategy(parameters: list[dict[str, Any]]) -> st.SearchStrategy[dict[str, str]]:
    fields = {p["name"]: value_strategy(p.get("schema", {})) for p in parameters if p["in"] == "query"}
    return st.fixed_dictionaries({}, optional=fields)


OPERATIONS = [(path, op) for path, item in DOCUMENT["paths"].items() for op in item.values()]
SERVICES = st.one_of(st.sampled_from(["fake", "file", "console", "legacyvendor"]), ANY_TEXT.filter(bool))


@pytest.mark.parametrize(("path", "operation"), OPERATIONS, ids=[p for p, _ in OPERATIONS])
def test_no_generated_request_gets_a_5xx(connector: Connector, path: str, operation: dict[str, Any]) -> None:
    with TestClient(create_app(connector), raise_server_exceptions=False) as client:

        @settings(max_examples=150 if operation.get("parameters") else 10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(query_strategy(operation.get("parameters", [])), SERVICES)
        def check(query: dict[str, str], service: str) -> None:
            url = path.replace("{service}", quote(service, safe=""))
            response = client.get(url, params=query)
            assert response.status_code < 500, (url, query, response.text)
            assert str(response.status_code) in operation["responses"], (url, query, response.status_code)
            if response.headers["content-type"].startswith("application/json"):
                body = response.json()
                if response.status_code >= 400:
                    assert set(body["error"]) >= {"code", "message"}

        check()
