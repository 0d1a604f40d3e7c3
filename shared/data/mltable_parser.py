"""Reading the text of an ``MLTable`` file into an :class:`~shared.data.mltable.MLTable`.

The YAML that users write is looser than the model: transformations come as ``name`` or
``name: arguments``, arguments have several spellings (``take: 10`` or ``take: {count: 10}``, a column or
a list of columns, the docs' ``{timestamp:yyyy/MM/dd}`` shorthand), and errors must point at a line of
the file. This module does that translation and decides what is supported: ``filter`` and
``read_delta_lake`` are refused with a reason, anything unknown is refused with the supported list, a
second ``read_*`` or one that is not first is refused. Kept apart from :mod:`shared.data.mltable` so the
readers and the planner, which only need the validated model, do not carry the YAML parser and its
line bookkeeping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from shared.data.mltable import (
    MLTABLE_FILE,
    ConvertColumnTypes,
    DropColumns,
    ExtractPartitionFormat,
    KeepColumns,
    MLTable,
    MLTablePath,
    ReadDelimited,
    ReadJsonLines,
    ReadParquet,
    Skip,
    Take,
    TakeRandomSample,
)
from shared.errors import MLTableError
from shared.models import FrozenModel

_MODELS: dict[str, type[FrozenModel]] = {
    "read_delimited": ReadDelimited,
    "read_parquet": ReadParquet,
    "read_json_lines": ReadJsonLines,
    "take": Take,
    "skip": Skip,
    "take_random_sample": TakeRandomSample,
    "drop_columns": DropColumns,
    "keep_columns": KeepColumns,
    "convert_column_types": ConvertColumnTypes,
    "extract_columns_from_partition_format": ExtractPartitionFormat,
}
_REFUSED = {
    "filter": "filter expressions are not supported; filter rows in run() instead",
    "read_delta_lake": "Delta Lake tables are not supported; export the table version to parquet",
}
_TOP_LEVEL = {"$schema", "type", "paths", "transformations", "metadata", "traits"}


def parse_mltable(text: str, source: str = MLTABLE_FILE) -> MLTable:
    """Parse and validate the text of an MLTable file.

    Args:
        text: the YAML.
        source: where it came from, used in error messages (``<source>:<line>: ...``).

    Raises:
        MLTableError: malformed YAML, a missing or malformed ``paths`` entry, an unsupported or
            malformed transformation — the message names it and its line.
    """
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise MLTableError(f"{source}: not valid YAML: {exc}", path=source) from exc
    if not isinstance(document, CommentedMap):
        raise MLTableError(f"{source}: expected a mapping with 'paths' and 'transformations'", path=source)
    for key in document:
        if key not in _TOP_LEVEL:
            raise MLTableError(
                f"{_where(source, document, key)}: unknown key {key!r}; expected one of "
                "paths, transformations, type, $schema",
                path=source,
            )
    kind = document.get("type", "mltable")
    if kind != "mltable":
        raise MLTableError(f"{_where(source, document, 'type')}: type must be 'mltable', not {kind!r}")
    paths = _parse_paths(document, source)
    transformations = _parse_transformations(document, source)
    return MLTable(paths=paths, transformations=transformations)


def _parse_paths(document: CommentedMap, source: str) -> list[MLTablePath]:
    raw = document.get("paths")
    if not isinstance(raw, CommentedSeq) or not raw:
        raise MLTableError(
            f"{_where(source, document, 'paths')}: 'paths' must be a non-empty list of "
            "{file: ...}, {folder: ...} or {pattern: ...}",
            path=source,
        )
    paths: list[MLTablePath] = []
    for position, entry in enumerate(raw):
        where = _where(source, raw, position)
        if not isinstance(entry, CommentedMap) or len(entry) != 1:
            raise MLTableError(
                f"{where}: each path must have exactly one of file, folder or pattern", path=source
            )
        (kind, value), *_ = entry.items()
        if kind not in {"file", "folder", "pattern"} or not isinstance(value, str) or not value.strip():
            raise MLTableError(
                f"{where}: expected 'file: <path>', 'folder: <path>' or 'pattern: <glob>', got {kind!r}",
                path=source,
            )
        paths.append(MLTablePath(kind=kind, value=value.strip()))
    return paths


def _parse_transformations(document: CommentedMap, source: str) -> list[Any]:
    raw = document.get("transformations")
    if raw is None:
        return []
    if not isinstance(raw, CommentedSeq):
        raise MLTableError(f"{_where(source, document, 'transformations')}: expected a list", path=source)
    steps: list[Any] = []
    reads = 0
    for position, entry in enumerate(raw):
        where = _where(source, raw, position)
        name, arguments = _split_step(entry, where, source)
        if name in _REFUSED:
            raise MLTableError(
                f"{where}: transformation {name!r} is not supported: {_REFUSED[name]}",
                path=source,
                transformation=name,
            )
        model = _MODELS.get(name)
        if model is None:
            raise MLTableError(
                f"{where}: unknown transformation {name!r}; supported: {', '.join(sorted(_MODELS))}",
                path=source,
                transformation=name,
            )
        try:
            step = model.model_validate({"kind": name, **_arguments(name, arguments)})
        except (ValidationError, TypeError, ValueError) as exc:
            raise MLTableError(
                f"{where}: transformation {name!r} is malformed: {_explain(exc)}",
                path=source,
                transformation=name,
            ) from exc
        if isinstance(step, ReadDelimited | ReadParquet | ReadJsonLines):
            reads += 1
            if reads > 1:
                raise MLTableError(f"{where}: only one read_* transformation is allowed", path=source)
            if steps:
                raise MLTableError(f"{where}: {name!r} must be the first transformation", path=source)
        steps.append(step)
    return steps


def _split_step(entry: Any, where: str, source: str) -> tuple[str, Any]:
    if isinstance(entry, str):
        return entry, None
    if isinstance(entry, CommentedMap) and len(entry) == 1:
        (name, arguments), *_ = entry.items()
        return str(name), arguments
    raise MLTableError(
        f"{where}: each transformation must be a single '<name>: <arguments>' entry", path=source
    )


def _arguments(name: str, arguments: Any) -> dict[str, Any]:
    """Normalise the many spellings of transformation arguments into model fields."""
    special = _SPECIAL_ARGUMENTS.get(name)
    if special is not None:
        return special(arguments)
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise ValueError(f"expected a mapping of options, got {arguments!r}")
    return dict(arguments)


def _count(arguments: Any) -> dict[str, Any]:
    return dict(arguments) if isinstance(arguments, dict) else {"count": arguments}


def _columns(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        arguments = arguments.get("columns")
    return {"columns": [arguments] if isinstance(arguments, str) else list(arguments or [])}


def _conversions(arguments: Any) -> dict[str, Any]:
    items = arguments if isinstance(arguments, list) else [arguments]
    return {"conversions": [_conversion(item) for item in items]}


def _conversion(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or "columns" not in item or "column_type" not in item:
        raise ValueError("each conversion needs 'columns' and 'column_type'")
    columns = item["columns"]
    column_type = item["column_type"]
    result: dict[str, Any] = {"columns": [columns] if isinstance(columns, str) else list(columns)}
    if isinstance(column_type, str):
        result["type"] = {"bool": "boolean", "integer": "int", "double": "float"}.get(
            column_type, column_type
        )
        if result["type"] == "datetime":
            raise ValueError(
                "datetime conversion needs 'formats', e.g. column_type: {datetime: {formats: [...]}}"
            )
        return result
    if isinstance(column_type, dict) and len(column_type) == 1:
        (kind, options), *_ = column_type.items()
        kind = {"bool": "boolean"}.get(kind, kind)
        result["type"] = kind
        if kind in {"boolean", "datetime"}:
            options = dict(options or {})
            if kind == "datetime" and isinstance(options.get("formats"), str):
                options["formats"] = [options["formats"]]
            result[kind] = options
        return result
    raise ValueError(f"column_type must be int, float, string, boolean or datetime, got {column_type!r}")


def _partition_format(arguments: Any) -> str:
    """``{partition_format: "..."}``, a plain string, or the flow-mapping shorthand of the docs
    (``{timestamp:yyyy/MM/dd}``, which YAML reads as a key without value)."""
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, dict):
        if "partition_format" in arguments:
            return str(arguments["partition_format"])
        if len(arguments) == 1:
            (key, value), *_ = arguments.items()
            if value is None:
                return "{" + str(key) + "}"
    raise ValueError("expected {partition_format: '<format>'}")


_SPECIAL_ARGUMENTS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "take": _count,
    "skip": _count,
    "drop_columns": _columns,
    "keep_columns": _columns,
    "convert_column_types": _conversions,
    "extract_columns_from_partition_format": lambda arguments: {
        "partition_format": _partition_format(arguments)
    },
}


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in error['loc'] if p != 'kind') or 'value'}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


def _where(source: str, node: CommentedMap | CommentedSeq, key: str | int) -> str:
    """``source:line`` of ``node``'s entry ``key`` (a mapping key or a list position), else of ``node``."""
    try:
        line = (node.lc.key(key) if isinstance(node, CommentedMap) else node.lc.item(key))[0] + 1
    except (KeyError, TypeError, AttributeError):
        line = node.lc.line + 1
    return f"{source}:{line}"
