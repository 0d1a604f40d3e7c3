"""The OpenAPI document: valid 3.1, every route, every $ref resolvable, and docs/openapi.json current."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from shared.api.app import ROUTES
from shared.api.openapi import build_openapi, openapi_json

ROOT = Path(__file__).resolve().parents[3]


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_document_is_valid_openapi_3_1() -> None:
    document = build_openapi(ROUTES)
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any schema violation


def test_every_route_is_documented_once_with_its_parameters() -> None:
    document = build_openapi(ROUTES)
    operations = {
        (path, method): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert {(route.openapi_path, route.method.lower()) for route in ROUTES} == set(operations)
    for route in ROUTES:
        operation = operations[(route.openapi_path, route.method.lower())]
        assert operation["operationId"] == route.name
        in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert in_path == set(route.path_parameters)
        assert "401" in operation["responses"]
    logs = operations[("/api/runs/{run_id}/logs/{path}", "get")]
    assert {p["name"]: p["in"] for p in logs["parameters"]} == {
        "run_id": "path",
        "path": "path",
        "offset": "query",
    }
    submit = operations[("/api/pipelines", "post")]
    assert set(submit["requestBody"]["content"]) == {
        "application/yaml",
        "application/json",
        "multipart/form-data",
    }
    assert "202" in submit["responses"]


def test_every_reference_resolves() -> None:
    document = build_openapi(ROUTES)
    refs = set(_refs(document))
    assert refs, "the document should share schemas by reference"
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in document["components"]["schemas"], ref


def test_function_key_is_the_security_scheme() -> None:
    document = build_openapi(ROUTES)
    schemes = document["components"]["securitySchemes"]
    assert schemes["functionKeyHeader"] == {"type": "apiKey", "in": "header", "name": "x-functions-key"}
    assert schemes["functionKeyQuery"]["name"] == "code"


def test_committed_document_is_current() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert json.loads(committed) == json.loads(openapi_json(ROUTES)), (
        "docs/openapi.json is stale: run `python -m shared.api.openapi > docs/openapi.json`"
    )
    assert committed == openapi_json(ROUTES)
