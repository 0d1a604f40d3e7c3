"""The OpenAPI 3.1 document of the HTTP API, built from the route table and the pydantic models.

Served at ``GET /api/openapi.json`` and committed as ``docs/openapi.json`` (a test keeps the file
current: regenerate it with ``python -m shared.api.openapi > docs/openapi.json``). Schemas are the
models' JSON Schemas (OpenAPI 3.1 *is* JSON Schema 2020-12), shared under ``components/schemas``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared.api.models import ErrorBody
from shared.api.routes import Route

OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"

_COMMON_ERRORS: dict[int, str] = {
    400: "The request is malformed; the body says what and where.",
    401: "The function key is missing or wrong.",
    500: "The server failed; see its log.",
}


def build_openapi(routes: Iterable[Route], version: str = "0.1.0") -> dict[str, Any]:
    """The OpenAPI document of ``routes`` as a JSON-ready dict (deterministic: sorted keys)."""
    routes = list(routes)
    models = _models(routes)
    key_map, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template=REF_TEMPLATE
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    refs = {model: key_map[(model, "validation")]["$ref"] for model in models}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.name,
            "summary": route.summary,
            "parameters": _parameters(route, schemas, refs),
            "responses": _responses(route, refs),
        }
        if route.request_bodies:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    content_type: {"schema": {"$ref": refs[body]} if isinstance(body, type) else body}
                    for content_type, body in route.request_bodies.items()
                },
            }
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = operation

    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Fanout API",
            "version": version,
            "description": "Submit Azure ML pipeline specs, follow runs, read their logs, cancel them, "
            "and look up data assets. Every call needs the function key, as the `x-functions-key` "
            "header or the `code` query parameter.",
        },
        "servers": [{"url": "/", "description": "The Function App, or `fanout serve` (127.0.0.1:7071)."}],
        "security": [{"functionKeyHeader": []}, {"functionKeyQuery": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "functionKeyHeader": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "functionKeyQuery": {"type": "apiKey", "in": "query", "name": "code"},
            },
        },
    }


def openapi_json(routes: Iterable[Route]) -> str:
    """The document as stable, indented JSON text (what ``docs/openapi.json`` holds)."""
    return json.dumps(build_openapi(routes), indent=2, sort_keys=True) + "\n"


def _models(routes: list[Route]) -> list[type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {ErrorBody.__name__: ErrorBody}
    for route in routes:
        candidates: list[Any] = [route.parameters, *route.request_bodies.values()]
        candidates += [model for _, model in route.responses.values()]
        for model in candidates:
            if isinstance(model, type) and issubclass(model, BaseModel):
                found.setdefault(model.__name__, model)
    return [found[name] for name in sorted(found)]


def _parameters(
    route: Route, schemas: dict[str, Any], refs: dict[type[BaseModel], str]
) -> list[dict[str, Any]]:
    if route.parameters is None:
        return []
    schema = schemas[refs[route.parameters].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    in_path = route.path_parameters
    parameters = []
    for name, field_schema in schema.get("properties", {}).items():
        location = "path" if name in in_path else "query"
        parameter = {
            "name": name,
            "in": location,
            "required": location == "path" or name in required,
            "description": field_schema.get("description", ""),
            "schema": {
                key: value for key, value in field_schema.items() if key not in {"description", "title"}
            },
        }
        parameters.append(parameter)
    return parameters


def _responses(route: Route, refs: dict[type[BaseModel], str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for status, (description, model) in sorted(route.responses.items()):
        answer: dict[str, Any] = {"description": description}
        if model is not None:
            answer["content"] = {"application/json": {"schema": {"$ref": refs[model]}}}
        answers[str(status)] = answer
    for status, description in _COMMON_ERRORS.items():
        answers.setdefault(
            str(status),
            {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": refs[ErrorBody]}}},
            },
        )
    return answers


def main() -> None:
    """Print the document (``python -m shared.api.openapi > docs/openapi.json``)."""
    from shared.api.app import ROUTES

    print(openapi_json(ROUTES), end="")


if __name__ == "__main__":
    main()
