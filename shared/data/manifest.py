"""The mini-batch manifest: compact descriptors of every mini-batch of a parallel step, stored once.

A mini-batch never carries data, only where its data is: a list of file paths under a root (file
inputs), or byte ranges / parquet row groups of source files (tabular inputs). The step's manifest is
one gzip-compressed JSON blob (``runs/<run>/<job>/manifest.json.gz``) written by the plan phase and
read by every agent. Mini-batches are stored column-wise (a list per field, with offsets), never as
one object each: 100,000 one-file mini-batches are about half a megabyte stored, load in a few
hundredths of a second and take a few MB of memory; :class:`MiniBatch` objects are built on access.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import Literal, overload

from azure.core.exceptions import ResourceNotFoundError
from pydantic import Field

from shared.data.locations import BlobRoot
from shared.data.mltable import Encoding, HeaderMode, Transformation
from shared.errors import NotFoundError
from shared.models import FrozenModel
from shared.orchestration.contracts import StepRef
from shared.storage import Container, StorageClients, manifest_path

logger = logging.getLogger(__name__)

#: A partition key value as ``run(mini_batch, mini_batch_context)`` sees it.
KeyValue = str | int | float | bool

MANIFEST_VERSION = 1


class TabularFormat(StrEnum):
    """The file format of a tabular input's sources (which MLTable ``read_*`` transformation it had)."""

    DELIMITED = "delimited"
    PARQUET = "parquet"
    JSON_LINES = "json_lines"


class ColumnKind(StrEnum):
    """A column type inferred at plan time, so every mini-batch of a table gets the same dtypes."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    DATETIME = "datetime"
    STRING = "string"


class ReadOptions(FrozenModel):
    """How to read the sources of a tabular manifest (from the MLTable ``read_*`` transformation)."""

    format: TabularFormat = Field(description="The sources' file format.")
    delimiter: str = Field(default=",", description="Delimited: the field separator.")
    encoding: Encoding = Field(default=Encoding.UTF8, description="Delimited, JSON lines: the text encoding.")
    header: HeaderMode = Field(
        default=HeaderMode.ALL_FILES_SAME_HEADERS, description="Delimited: which first lines are headers."
    )
    empty_as_string: bool = Field(default=False, description="Delimited: empty fields stay '' in strings.")
    include_path_column: bool = Field(default=False, description="Add a 'Path' column.")
    support_multi_line: bool = Field(
        default=False, description="Delimited: quoted fields may hold line breaks (files are not split)."
    )
    invalid_lines: Literal["error", "drop"] = Field(
        default="error", description="JSON lines: fail on a line that is not JSON, or drop it."
    )
    columns: list[str] | None = Field(
        default=None, description="Delimited: the table's columns (the union for different headers)."
    )
    column_types: dict[str, ColumnKind] | None = Field(
        default=None, description="Delimited: types inferred from the first rows; None: all strings."
    )


class SourceFile(FrozenModel):
    """One file of a tabular input, read by one or more mini-batches."""

    root: int = Field(default=0, description="Index into Manifest.roots.")
    path: str = Field(description="Path relative to the root.")
    size: int = Field(ge=0, description="Bytes.")
    display: str = Field(description="What the Path column shows, and what partition formats match.")
    columns: list[str] | None = Field(
        default=None, description="Delimited: this file's header when it differs from ReadOptions.columns."
    )
    has_header: bool = Field(default=False, description="Delimited: the first line is a header to skip.")


class TabularPart(FrozenModel):
    """A piece of one source file: a byte range (delimited, JSON lines) or row groups (parquet)."""

    source: int = Field(description="Index into Manifest.sources.")
    start: int = Field(default=0, ge=0, description="First byte; records starting in [start, end) are read.")
    end: int | None = Field(default=None, description="End byte (exclusive); None: end of file.")
    row_groups: list[int] | None = Field(default=None, description="Parquet row groups; None: all.")
    rows: tuple[int, int] | None = Field(
        default=None,
        description="Keep only rows [first, last) of this part (take/skip, decided at plan time).",
    )


class MiniBatch(FrozenModel):
    """A compact mini-batch descriptor; ``index`` is 0..n-1 in plan order.

    Built on demand from the manifest's columns (``manifest.mini_batches[i]``): a step of 100,000
    mini-batches never holds 100,000 of these at once.
    """

    index: int = Field(ge=0, description="Position in the manifest, 0..count-1.")
    items: int | None = Field(default=None, description="Files, or rows when known up front.")
    partition_key_value: dict[str, KeyValue] | None = Field(
        default=None, description="{key: value} of this partition (partition_keys only)."
    )
    root: int = Field(default=0, description="File lists: index into Manifest.roots.")
    files: list[str] = Field(default_factory=list, description="File lists: paths relative to the root.")
    sizes: list[int] = Field(default_factory=list, description="File lists: size of each file.")
    modified: list[int] = Field(
        default_factory=list, description="File lists: Last-Modified (epoch s) of each file; cache identity."
    )
    parts: list[TabularPart] = Field(default_factory=list, description="Tabular: what to read.")
    key_filter: bool = Field(
        default=False, description="Tabular partitions by data columns: keep rows equal to the key values."
    )


class Manifest(FrozenModel):
    """Every mini-batch of a step (stored column-wise), plus what a reader needs once.

    Mini-batch ``i`` owns files ``files[file_offsets[i]:file_offsets[i+1]]`` (file lists) or parts
    ``part_*[part_offsets[i]:part_offsets[i+1]]`` (tabular). Use :attr:`mini_batches` to get
    :class:`MiniBatch` descriptors; build manifests with :class:`ManifestBuilder`.
    """

    version: int = Field(default=MANIFEST_VERSION, description="Manifest format version.")
    kind: Literal["files", "tabular"] = Field(description="File lists or tabular parts.")
    input_name: str = Field(description="The job input that was split (ParallelSettings.input_data).")
    roots: list[BlobRoot] = Field(description="Where the data is; mini-batches and sources index into it.")
    count: int = Field(ge=0, description="Number of mini-batches.")
    total_items: int | None = Field(default=None, description="Files, or rows when known (None otherwise).")
    items: list[int] = Field(
        default_factory=list, description="Items per mini-batch, -1 unknown; [] all unknown."
    )
    keys: list[dict[str, KeyValue]] | None = Field(
        default=None, description="partition_key_value per mini-batch."
    )
    key_filter: bool = Field(
        default=False, description="Tabular partitions by data columns: mini-batches filter rows by key."
    )
    partition_keys: list[str] | None = Field(default=None, description="The job's partition_keys, if any.")
    # file lists
    batch_roots: list[int] | None = Field(default=None, description="Root per mini-batch; None: all root 0.")
    file_offsets: list[int] = Field(
        default_factory=list,
        description="count + 1 offsets into files: mini-batch i's first file, then the end.",
    )
    files: list[str] = Field(default_factory=list, description="Paths relative to their mini-batch's root.")
    sizes: list[int] = Field(default_factory=list, description="Size of each file, parallel to files.")
    modified: list[int] = Field(
        default_factory=list, description="Last-Modified (epoch s) of each file, parallel to files."
    )
    # tabular
    read: ReadOptions | None = Field(default=None, description="Tabular: how to read the sources.")
    sources: list[SourceFile] = Field(default_factory=list, description="Tabular: the files read.")
    transformations: list[Transformation] = Field(
        default_factory=list,
        description="MLTable transformations applied to every tabular mini-batch after reading "
        "(take/skip are already folded into the parts' rows).",
    )
    part_offsets: list[int] = Field(
        default_factory=list, description="count + 1 offsets into the part_* lists, as file_offsets."
    )
    part_source: list[int] = Field(default_factory=list, description="Each part's index into sources.")
    part_start: list[int] = Field(default_factory=list, description="Each part's first byte.")
    part_end: list[int] = Field(default_factory=list, description="-1: to the end of the file.")
    part_row_groups: list[list[int]] | None = Field(default=None, description="Parquet; [] means all.")
    part_rows: list[list[int]] | None = Field(default=None, description="[first, last) kept, [] means all.")

    @property
    def mini_batches(self) -> MiniBatches:
        """The mini-batch descriptors, as a lazily built sequence."""
        return MiniBatches(self)

    def mini_batch(self, index: int) -> MiniBatch:
        """Descriptor of mini-batch ``index``.

        Raises:
            IndexError: no such mini-batch.
        """
        if not 0 <= index < self.count:
            raise IndexError(f"mini-batch {index} does not exist (the step has {self.count})")
        items = self.items[index] if self.items else -1
        fields: dict[str, object] = {
            "index": index,
            "items": None if items < 0 else items,
            "partition_key_value": self.keys[index] if self.keys is not None else None,
            "key_filter": self.key_filter,
        }
        if self.kind == "files":
            lo, hi = self.file_offsets[index], self.file_offsets[index + 1]
            fields.update(
                root=self.batch_roots[index] if self.batch_roots is not None else 0,
                files=self.files[lo:hi],
                sizes=self.sizes[lo:hi],
                modified=self.modified[lo:hi],
            )
        else:
            lo, hi = self.part_offsets[index], self.part_offsets[index + 1]
            fields["parts"] = [self._part(position) for position in range(lo, hi)]
        return MiniBatch.model_validate(fields)

    def _part(self, position: int) -> TabularPart:
        end = self.part_end[position]
        groups = self.part_row_groups[position] if self.part_row_groups is not None else []
        rows = self.part_rows[position] if self.part_rows is not None else []
        return TabularPart(
            source=self.part_source[position],
            start=self.part_start[position],
            end=None if end < 0 else end,
            row_groups=groups or None,
            rows=(rows[0], rows[1]) if rows else None,
        )


class MiniBatches(Sequence[MiniBatch]):
    """A read-only sequence view of a manifest's mini-batches, built one by one on access."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest

    def __len__(self) -> int:
        return self._manifest.count

    @overload
    def __getitem__(self, index: int) -> MiniBatch: ...
    @overload
    def __getitem__(self, index: slice) -> list[MiniBatch]: ...
    def __getitem__(self, index: int | slice) -> MiniBatch | list[MiniBatch]:
        if isinstance(index, slice):
            return [self._manifest.mini_batch(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        return self._manifest.mini_batch(index)


class ManifestBuilder:
    """Collects mini-batches column-wise, in plan order, then freezes them into a :class:`Manifest`."""

    def __init__(self, kind: Literal["files", "tabular"], input_name: str, roots: list[BlobRoot]) -> None:
        self.kind = kind
        self.input_name = input_name
        self.roots = roots
        self.count = 0
        self.key_filter = False
        self._items: list[int] = []
        self._keys: list[dict[str, KeyValue]] = []
        self._batch_roots: list[int] = []
        self._file_offsets = [0]
        self._files: list[str] = []
        self._sizes: list[int] = []
        self._modified: list[int] = []
        self._part_offsets = [0]
        self._part_source: list[int] = []
        self._part_start: list[int] = []
        self._part_end: list[int] = []
        self._part_row_groups: list[list[int]] = []
        self._part_rows: list[list[int]] = []

    def add_files(
        self,
        paths: Sequence[str],
        sizes: Sequence[int],
        modified: Sequence[int],
        *,
        root: int = 0,
        key: dict[str, KeyValue] | None = None,
    ) -> None:
        """Add a file-list mini-batch."""
        self._files.extend(paths)
        self._sizes.extend(sizes)
        self._modified.extend(modified)
        self._file_offsets.append(len(self._files))
        self._batch_roots.append(root)
        self._finish(len(paths), key)

    def add_parts(
        self,
        parts: Sequence[TabularPart],
        *,
        items: int | None = None,
        key: dict[str, KeyValue] | None = None,
    ) -> None:
        """Add a tabular mini-batch made of ``parts``."""
        for part in parts:
            self._part_source.append(part.source)
            self._part_start.append(part.start)
            self._part_end.append(-1 if part.end is None else part.end)
            self._part_row_groups.append(list(part.row_groups or []))
            self._part_rows.append(list(part.rows) if part.rows is not None else [])
        self._part_offsets.append(len(self._part_source))
        self._finish(items, key)

    def _finish(self, items: int | None, key: dict[str, KeyValue] | None) -> None:
        self._items.append(-1 if items is None else items)
        if key is not None:
            self._keys.append(key)
        self.count += 1

    def build(self, **fields: object) -> Manifest:
        """The manifest; ``fields`` adds reader options (read, sources, transformations, ...)."""
        if self._keys and len(self._keys) != self.count:
            raise ValueError("either every mini-batch has a partition key value or none has")
        known = [n for n in self._items if n >= 0]
        total = sum(known) if len(known) == self.count else None
        tabular = self.kind == "tabular"
        return Manifest(
            kind=self.kind,
            input_name=self.input_name,
            roots=self.roots,
            count=self.count,
            total_items=total,
            items=self._items if known else [],
            keys=self._keys or None,
            key_filter=self.key_filter,
            batch_roots=self._batch_roots if any(self._batch_roots) else None,
            file_offsets=self._file_offsets if not tabular else [],
            files=self._files,
            sizes=self._sizes,
            modified=self._modified,
            part_offsets=self._part_offsets if tabular else [],
            part_source=self._part_source,
            part_start=self._part_start,
            part_end=self._part_end,
            part_row_groups=self._part_row_groups if any(self._part_row_groups) else None,
            part_rows=self._part_rows if any(self._part_rows) else None,
            **fields,
        )


def save_manifest(clients: StorageClients, step: StepRef, manifest: Manifest) -> None:
    """Store the manifest of ``step`` (one gzip JSON blob; overwrites a previous plan of the step)."""
    payload = gzip.compress(manifest.model_dump_json().encode(), compresslevel=5)
    clients.container(Container.RUNS).upload_blob(
        manifest_path(step.run_id, step.job), payload, overwrite=True, max_concurrency=4
    )
    logger.debug(
        "saved manifest of %s/%s: %d mini-batches, %d bytes",
        step.run_id,
        step.job,
        manifest.count,
        len(payload),
    )


def load_manifest(clients: StorageClients, step: StepRef) -> Manifest:
    """The stored manifest of ``step``.

    Raises:
        NotFoundError: the step has not been planned.
    """
    path = manifest_path(step.run_id, step.job)
    try:
        payload = clients.container(Container.RUNS).download_blob(path, max_concurrency=4).readall()
    except ResourceNotFoundError as exc:
        raise NotFoundError(
            f"{Container.RUNS.value}/{path} does not exist: the step has not been planned",
            run_id=step.run_id,
            job=step.job,
        ) from exc
    return Manifest.model_validate_json(gzip.decompress(payload))
