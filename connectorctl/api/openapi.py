"""The OpenAPI 3.1 document served at ``/openapi.json``.

Written by hand (the API is small) so that it states the reference design's
field names exactly; a test checks it against the routes and the property
test drives the server from it.
"""

from __future__ import annotations

from typing import Any

from connectorctl.api.params import MAX_TEXT, STATUSES
from connectorctl.store.queries import DEFAULT_LIMIT, LOG_COLUMNS, MAX_LIMIT

_NUM = {"type": ["number", "null"]}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "hint": {"type": "string"}},
        }
    },
}


def _err(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(ref: str) -> dict[str, Any]:
    return {"description": "OK", "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_LOG_TYPES: dict[str, Any] = {c: {"type": ["string", "null"]} for c in LOG_COLUMNS}
_LOG_TYPES.update(
    {
        "id": {"type": "string"},
        "service_name": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "http_status_code": {"type": ["integer", "null"]},
        "duration_ms": {"type": "integer"},
        "attempt_number": {"type": "integer"},
        "request_data": {"description": "redacted JSON request payload"},
        "response_data": {"description": "redacted JSON response payload"},
        "created_at": {"type": "string", "format": "date-time"},
    }
)
_COMMON = {"401": _err("Missing or wrong bearer token"), "503": _err("The state database is unusable")}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "connectorctl monitoring API",
        "version": "1.0.0",
        "description": "Integration logs, metrics, health and status of the connectorctl gateway.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": _ERROR,
            "LogEntry": {"type": "object", "required": list(LOG_COLUMNS), "properties": _LOG_TYPES},
            "LogPage": {
                "type": "object",
                "required": ["data", "meta"],
                "properties": {
                    "data": {"type": "array", "items": {"$ref": "#/components/schemas/LogEntry"}},
                    "meta": {
                        "type": "object",
                        "required": ["limit", "offset", "count"],
                        "properties": {
                            "limit": {"type": "integer"},
                            "offset": {"type": "integer"},
                            "count": {"type": "integer"},
                        },
                    },
                },
            },
            "Metrics": {
                "type": "object",
                "required": ["service", "period", "metrics"],
                "properties": {
                    "service": {"type": "string"},
                    "period": {
                        "type": "object",
                        "required": ["from", "to"],
                        "properties": {
                            "from": {"type": "string", "format": "date-time", "examples": ["2025-10-18T00:00:00.000Z"]},
                            "to": {"type": "string", "format": "date-time"},
                        },
                    },
                    "metrics": {
                        "type": "object",
                        "required": ["success_count", "failure_count", "success_rate", "avg_duration_ms"],
                        "properties": {
                            "success_count": {"type": "integer"},
                            "failure_count": {"type": "integer"},
                            "success_rate": {"type": "number"},
                            "avg_duration_ms": {"type": "number"},
                            "retry_count": {"type": "integer"},
                            "p50_ms": {"type": ["integer", "null"]},
                            "p95_ms": {"type": ["integer", "null"]},
                            "p99_ms": {"type": ["integer", "null"]},
                        },
                    },
                },
            },
            "Health": {
                "type": "object",
                "required": ["status", "timestamp", "services"],
                "properties": {
                    "status": {"type": "string", "enum": ["healthy", "unhealthy"]},
                    "timestamp": {"type": "string", "format": "date-time"},
                    "services": {
                        "type": "object",
                        "required": ["database", "connector"],
                        "properties": {
                            "database": {"type": "string", "enum": ["connected", "disconnected"]},
                            "connector": {"type": "string"},
                        },
                    },
                },
            },
            "Status": {
                "type": "object",
                "required": ["services", "timestamp"],
                "properties": {
                    "timestamp": {"type": "string", "format": "date-time"},
                    "services": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["status", "success_rate", "avg_duration_ms", "circuit_state"],
                            "properties": {
                                "status": {"type": "string", "enum": ["healthy", "degraded", "down"]},
                                "success_rate": _NUM,
                                "avg_duration_ms": _NUM,
                                "circuit_state": {"type": "string"},
                                "calls": {
                                    "type": "integer",
                                    "description": "logical calls (all attempts of one call count once)",
                                },
                                "attempts": {"type": "integer"},
                                "attempt_success_rate": _NUM,
                                "window_minutes": {"type": "integer"},
                            },
                        },
                    },
                },
            },
            "Outbox": {
                "type": "object",
                "required": ["depth", "oldest_age_seconds", "by_status", "timestamp"],
                "properties": {
                    "depth": {
                        "type": "integer",
                        "description": "messages still to deliver (queued, retrying, being sent)",
                    },
                    "oldest_age_seconds": {**_NUM, "description": "how long the oldest of them has waited"},
                    "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "timestamp": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
    "security": [{"bearer": []}, {}],
    "paths": {
        "/api/connector/logs": {
            "get": {
                "operationId": "listLogs",
                "summary": "Integration log rows, newest first.",
                "parameters": [
                    _q("service", {"type": "string", "maxLength": MAX_TEXT}, "Service slug (unknown -> 404)."),
                    _q("status", {"type": "string", "enum": list(STATUSES)}, "Outcome of the attempt."),
                    _q("tenant_id", {"type": "string", "maxLength": MAX_TEXT}, "Tenant."),
                    _q("date_from", {"type": "string", "format": "date-time"}, "Start (ISO 8601, inclusive)."),
                    _q("date_to", {"type": "string", "format": "date-time"}, "End (ISO 8601, inclusive)."),
                    _q(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                        "Page size.",
                    ),
                    _q("offset", {"type": "integer", "minimum": 0, "default": 0}, "Rows to skip."),
                ],
                "responses": {
                    "200": _ok("LogPage"),
                    "400": _err("Bad parameter"),
                    "404": _err("Unknown service"),
                    **_COMMON,
                },
            }
        },
        "/api/connector/metrics/{service}": {
            "get": {
                "operationId": "serviceMetrics",
                "summary": "Success/failure counts, success rate and latency for one service.",
                "parameters": [
                    {"name": "service", "in": "path", "required": True, "schema": {"type": "string"}},
                    _q(
                        "from", {"type": "string", "default": "-7days"}, "ISO 8601 or relative (-30days, 7d, 12h, now)."
                    ),
                    _q("to", {"type": "string", "default": "now"}, "ISO 8601 or relative."),
                ],
                "responses": {
                    "200": _ok("Metrics"),
                    "400": _err("Bad parameter"),
                    "404": _err("Unknown service"),
                    **_COMMON,
                },
            }
        },
        "/api/connector/health": {
            "get": {
                "operationId": "health",
                "summary": "Database round trip; 503 when the database is unusable.",
                "responses": {
                    "200": _ok("Health"),
                    "401": _COMMON["401"],
                    "503": {
                        "description": "Unhealthy",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                    },
                },
            }
        },
        "/api/connector/status": {
            "get": {
                "operationId": "status",
                "summary": "Every configured service: healthy, degraded or down.",
                "responses": {"200": _ok("Status"), **_COMMON},
            }
        },
        "/api/connector/outbox": {
            "get": {
                "operationId": "outbox",
                "summary": "Outbox queue depth, the oldest message's age and a count per status.",
                "responses": {"200": _ok("Outbox"), **_COMMON},
            }
        },
        "/metrics": {
            "get": {
                "operationId": "prometheus",
                "summary": "Prometheus text exposition.",
                "responses": {
                    "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_COMMON,
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "401": _COMMON["401"],
                },
            }
        },
    },
}


def with_webhooks(document: dict[str, Any]) -> dict[str, Any]:
    """The document plus the inbound webhook receiver, when that package is installed."""
    paths = dict(document["paths"])
    paths["/api/connector/webhooks/{service}"] = {
        "post": {
            "operationId": "receiveWebhook",
            "summary": "Inbound vendor webhook; authenticated by the vendor's signature, not the bearer token.",
            "security": [{}],
            "parameters": [{"name": "service", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "Accepted"},
                "400": _err("Bad payload"),
                "401": _err("Bad signature"),
                "404": _err("Unknown service"),
            },
        }
    }
    return {**document, "paths": paths}
