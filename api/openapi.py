"""The OpenAPI document: every error the API can answer, as RFC 9457 problem details.

FastAPI documents the successful responses each route declares; this adds, to every
operation, the problems it can return (400 for bad parameters, 404 where a path names a
record, 422 for a body that does not fit, 503 when the store is down), all as
``application/problem+json`` with one ``Problem`` schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["PROBLEM_SCHEMA", "install_openapi"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; some problems add fields (errors, "
    "current_version, published_size …)",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "additionalProperties": True,
}

_REF = {"$ref": "#/components/schemas/Problem"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _REF}}}


def _complete(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("Problem", PROBLEM_SCHEMA)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete", "head"):
                continue
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            params = operation.get("parameters", [])
            if "422" in responses and not has_body:
                del responses["422"]  # parameters are answered with 400, not 422
            elif has_body:
                existing = responses.get("422", {}).get("description")
                described = existing if existing and existing != "Validation Error" else None
                responses["422"] = _problem(described or "The body does not fit the command")
            if params or has_body:
                responses.setdefault("400", _problem("A parameter or header is malformed"))
            if "{" in path:
                responses.setdefault("404", _problem("No such record"))
            responses.setdefault("503", _problem("The ledger store is unavailable"))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and /openapi.json, /docs) return the completed document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                    tags=app.openapi_tags,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
