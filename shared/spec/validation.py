"""Validating located plain data against the spec models, with errors a user can act on.

:func:`validate` runs three passes over a mapping:

1. unknown keys, at every level of nested models, are reported at the key with a did-you-mean and then
   dropped, so one typo does not hide every other problem of the same job;
2. pydantic validates what is left; each error is translated into ``what is wrong; what was expected
   (example)`` at the line of the offending value;
3. keys that Fanout accepts but ignores produce warnings; keys it cannot honour produce errors.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from shared.spec.fields import describe
from shared.spec.issues import Issues, Where, suggest
from shared.spec.schema import IGNORED, UNSUPPORTED

M = TypeVar("M", bound=BaseModel)


def validate(cls: type[M], data: Any, where: Where, issues: Issues, *, what: str = "") -> M | None:
    """``cls`` validated from ``data`` found at ``where``; None (with issues recorded) when invalid.

    Args:
        cls: the model.
        data: plain data from the loader.
        where: the location of ``data``.
        issues: collector.
        what: a noun for messages ("a parallel job"), default the model's name.
    """
    if not isinstance(data, dict):
        noun = what or "a mapping"
        issues.error(where, f"expected {noun}, got {describe(data)}", _example_keys(cls))
        return None
    cleaned = _drop_unknown_keys(cls, data, where, issues)
    try:
        model = cls.model_validate(cleaned)
    except ValidationError as exc:
        bad_keys: set[str] = set()
        for error in exc.errors(include_url=False):
            _translate(cls, error, where, issues)
            if error["loc"]:
                bad_keys.add(str(error["loc"][0]))
        return _without(cls, cleaned, bad_keys, where, issues)
    _report_marked_fields(model, where, issues)
    return model


def _without(
    cls: type[M], data: dict[str, Any], bad_keys: set[str], where: Where, issues: Issues
) -> M | None:
    """The model without the keys that failed, so later phases still check the rest (errors stay)."""
    required = {info.alias or name for name, info in cls.model_fields.items() if info.is_required()}
    if bad_keys & required:
        return None
    try:
        model = cls.model_validate({k: v for k, v in data.items() if k not in bad_keys})
    except ValidationError:
        return None
    _report_marked_fields(model, where, issues)
    return model


def keys_of(cls: type[BaseModel]) -> list[str]:
    """The YAML keys of a model (aliases where set)."""
    return [info.alias or name for name, info in cls.model_fields.items()]


def _example_keys(cls: type[BaseModel]) -> str:
    required = [info.alias or name for name, info in cls.model_fields.items() if info.is_required()]
    shown = required or keys_of(cls)[:3]
    return "a mapping with " + ", ".join(shown)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X | None`` / ``Annotated[X, ...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _field_by_key(cls: type[BaseModel], key: str) -> tuple[str, FieldInfo] | None:
    for name, info in cls.model_fields.items():
        if (info.alias or name) == key:
            return name, info
    return None


def _drop_unknown_keys(cls: type[BaseModel], data: dict[str, Any], where: Where, issues: Issues) -> Any:
    allowed = keys_of(cls)
    cleaned: dict[str, Any] = {}
    for written, value in data.items():
        key = written
        found = _field_by_key(cls, key)
        if found is None:
            issues.error(where / key, f"unknown key '{key}'", suggest(key, allowed), key=True)
            # A likely misspelling is still checked under the intended name (the error stays), so one
            # typo does not also report the intended key as missing.
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.8)
            if not close or close[0] in data or close[0] in cleaned:
                continue
            key = close[0]
            found = _field_by_key(cls, key)
            if found is None:
                continue
            where.source.alias((*where.path, written), (*where.path, key))
        nested = _model_in(found[1].annotation)
        if nested is not None and isinstance(value, dict):
            cleaned[key] = _drop_unknown_keys(nested, value, where / key, issues)
        else:
            cleaned[key] = value
    return cleaned


def _field_at(cls: type[BaseModel], loc: tuple[int | str, ...]) -> FieldInfo | None:
    current: type[BaseModel] | None = cls
    info: FieldInfo | None = None
    for part in loc:
        if current is None or not isinstance(part, str):
            return None
        found = _field_by_key(current, part)
        if found is None:
            return None
        info = found[1]
        current = _model_in(info.annotation)
    return info


_TYPE_WORDS = {
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
}


def _translate(cls: type[BaseModel], error: Any, where: Where, issues: Issues) -> None:
    loc = tuple(error["loc"])
    kind = error["type"]
    info = _field_at(cls, loc)
    sample = ""
    if info is not None and isinstance(info.json_schema_extra, dict):
        sample = str(info.json_schema_extra.get("example", ""))
    on_key = bool(loc) and loc[-1] == "[key]"
    if on_key:
        loc = loc[:-1]
    at = where.child(*loc)
    if kind == "missing":
        name = loc[-1] if loc else "?"
        expected = f"{name}: {sample}" if sample else f"a value for {name}"
        issues.error(at, f"required key '{name}' is missing", expected, key=True)
        return
    if kind == "spec":
        ctx = error.get("ctx") or {}
        issues.error(at, str(error["msg"]), str(ctx.get("expected", "")), key=on_key)
        return
    if kind == "extra_forbidden":
        parent = _field_at(cls, loc[:-1])
        model = _model_in(parent.annotation) if parent is not None else cls
        names = keys_of(model) if model is not None else []
        issues.error(at, f"unknown key '{loc[-1]}'", suggest(str(loc[-1]), names), key=True)
        return
    if kind == "literal_error":
        ctx = error.get("ctx") or {}
        allowed = str(ctx.get("expected", ""))
        issues.error(at, f"{describe(error.get('input'))} is not a valid value for '{loc[-1]}'", allowed)
        return
    word = _TYPE_WORDS.get(kind)
    if word is not None:
        expected = f"{word} (e.g. {sample})" if sample else word
        issues.error(at, f"expected {word}, got {describe(error.get('input'))}", expected)
        return
    issues.error(at, str(error["msg"]), f"e.g. {sample}" if sample else "")


def _report_marked_fields(model: BaseModel, where: Where, issues: Issues) -> None:
    for name in sorted(model.model_fields_set, key=list(type(model).model_fields).index):
        info = type(model).model_fields[name]
        key = info.alias or name
        value = getattr(model, name)
        marker = info.json_schema_extra.get("fanout") if isinstance(info.json_schema_extra, dict) else None
        if marker == IGNORED and value is not None:
            reason = info.description or ""
            issues.warn(where / key, f"'{key}' is accepted but ignored by Fanout: {reason}", key=True)
        elif marker == UNSUPPORTED and value is not None:
            reason = info.description or ""
            issues.error(where / key, f"'{key}' is not supported by Fanout", reason, key=True)
        elif isinstance(value, BaseModel):
            _report_marked_fields(value, where / key, issues)
