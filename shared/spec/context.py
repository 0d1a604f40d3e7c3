"""What every compile phase shares: the issue collector, the run id, base folders, and layered lookups.

A job that uses a component reads each setting from two layers: the job (in the pipeline file) wins,
the component (its own file) fills in. :class:`Layered` answers "what is the value of
``retry_settings.timeout`` and where was it written?" so errors point at the layer the value came from.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared.spec.issues import Issues, Where


@dataclass
class Context:
    """One compilation.

    Attributes:
        issues: every error and warning.
        run_id: the run being planned (``${{name}}`` in output paths).
        base_dir: folder of the pipeline file; None for self-contained text.
        override_dir: folder that relative ``--set`` paths are relative to (None: they are errors).
        default_datastore: what ``${{default_datastore}}`` expands to.
        confine: when set, every local path must lie inside this folder.
    """

    issues: Issues
    run_id: str
    base_dir: Path | None
    override_dir: Path | None
    default_datastore: str
    confine: Path | None = None
    loaded_components: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Layer:
    """A model and where it was written (plus the folder its relative paths are relative to)."""

    model: BaseModel
    where: Where
    base_dir: Path | None
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Layered:
    """A job over its component: ``get`` returns the first layer's value that is set."""

    layers: tuple[Layer, ...]

    def get(self, *attrs: str) -> tuple[Any, Where, Path | None]:
        """``(value, where, base_dir)`` of ``attrs`` (e.g. ``"retry_settings", "timeout"``).

        The value is None when no layer sets it; ``where`` is then the first layer's would-be path.
        """
        for layer in self.layers:
            if attrs and attrs[0] in layer.exclude:
                continue
            node: Any = layer.model
            for attr in attrs:
                node = getattr(node, attr, None) if node is not None else None
            if node is not None:
                return node, layer.where.child(*_keys(layer.model, attrs)), layer.base_dir
        first = self.layers[0]
        return None, first.where.child(*_keys(first.model, attrs)), first.base_dir

    @property
    def definition(self) -> Where:
        """Where a missing key belongs: the component when there is one, else the job."""
        return self.layers[-1].where

    def merged_dict(self, attr: str) -> dict[str, Any]:
        """A dict-valued field merged over the layers (the job's keys win)."""
        merged: dict[str, Any] = {}
        for layer in reversed(self.layers):
            value = getattr(layer.model, attr, None)
            if isinstance(value, dict):
                merged.update(value)
        return merged


def _keys(model: BaseModel, attrs: tuple[str, ...]) -> tuple[str, ...]:
    """YAML keys (aliases) for attribute names."""
    keys: list[str] = []
    cls: Any = type(model)
    for attr in attrs:
        info = cls.model_fields.get(attr) if cls is not None else None
        keys.append((info.alias or attr) if info is not None else attr)
        annotation = info.annotation if info is not None else None
        cls = _model_class(annotation)
    return tuple(keys)


def _model_class(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None
