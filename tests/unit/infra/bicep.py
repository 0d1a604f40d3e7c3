"""Reading the Bicep files for tests: parse once (pycep-parser, syntax only) and resolve simple values.

pycep returns each file as JSON (parameters, variables, resources, modules, outputs). Identifiers and
string literals both come back as strings, so :func:`resolve` replaces a string by a parameter or
variable only when it is exactly such a name — enough for the literal lists and objects the tests read.
Quoted object keys keep their quotes in pycep's output; :func:`resolve` removes them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[3] / "infra"


@cache
def load(name: str) -> dict[str, Any]:
    """The parsed ``infra/<name>`` (e.g. ``main.bicep``, ``app/batch.bicep``)."""
    document: dict[str, Any] = BicepParser().parse(file_path=INFRA / name)
    return document


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def resource(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A resource's body, with any ``if (...)`` condition or ``for`` loop unwrapped."""
    config: dict[str, Any] = document["resources"][name]["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def param_defaults(document: dict[str, Any]) -> dict[str, Any]:
    return {name: p["default"] for name, p in document["parameters"].items()}


def variables(document: dict[str, Any]) -> dict[str, Any]:
    return {name: v["value"] for name, v in document["variables"].items()}


def _key(key: str) -> str:
    """Object keys keep their quotes in pycep's output (``'cpu-cluster'``); drop them."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def resolve(value: Any, scope: dict[str, Any], document: dict[str, Any] | None = None) -> Any:
    """``value`` with names from ``scope`` substituted, and ``<resource>.name`` read from ``document``."""
    if isinstance(value, str) and value in scope:
        return resolve(scope[value], scope, document)
    if isinstance(value, list):
        return [resolve(v, scope, document) for v in value]
    if isinstance(value, dict):
        operator = value.get("operator")
        if operator and operator["type"] == "property_accessor" and document is not None:
            operands = operator["operands"]
            if operands["operand_2"] == "name" and operands["operand_1"] in document["resources"]:
                return resource(document, operands["operand_1"])["name"]
        return {_key(k): resolve(v, scope, document) for k, v in value.items()}
    return value
