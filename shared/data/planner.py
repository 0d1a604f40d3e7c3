"""Partitioning a parallel step's input into mini-batches: :func:`plan_mini_batches`.

The input named by ``ParallelSettings.input_data`` is split; other data inputs are materialised whole
on each node (``shared.data.materialize.materialize_input``).

File lists (``uri_file``, ``uri_folder``, an MLTable without ``read_*``), reference §1.2:

1. resolve the files in plan order (``shared.data.sources``);
2. with an MLTable, apply its row transformations to the file list (``skip``, ``take``,
   ``take_random_sample``: the rows of a file-list table are its files);
3. ``partition_keys``: one mini-batch per distinct key combination present, in order of first
   appearance; keys come from the MLTable's ``extract_columns_from_partition_format`` or, for a
   ``uri_folder``, from Hive-style ``key=value`` folder names;
4. otherwise group files by directory (order of first appearance) and cut each directory into
   chunks of ``mini_batch_size`` files (default 10); the remainder of a directory is a short
   mini-batch, so a mini-batch never mixes directories.

Tabular inputs (an MLTable with ``read_*``) are planned by ``shared.data.tabular``.
"""

from __future__ import annotations

import logging
import zlib
from datetime import datetime

from shared.data.locations import BlobFile, root_of
from shared.data.manifest import KeyValue, Manifest, ManifestBuilder
from shared.data.mltable import MLTable, Skip, Take, TakeRandomSample
from shared.data.patterns import compile_partition_format
from shared.data.sources import FileSet, folder_files, load_mltable, mltable_files, single_file
from shared.errors import DataError
from shared.orchestration.contracts import ResolvedInput, StepDefinition
from shared.plan import DataInput, DataType, JobPlan
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

DEFAULT_FILES_PER_MINI_BATCH = 10
DEFAULT_BYTES_PER_MINI_BATCH = 1024 * 1024

Groups = dict[tuple[int, tuple[KeyValue, ...]], tuple[dict[str, KeyValue], list[BlobFile]]]


def plan_mini_batches(clients: StorageClients, job: JobPlan, definition: StepDefinition) -> Manifest:
    """Split the parallel job's ``input_data`` into mini-batch descriptors.

    Args:
        clients: storage clients (the input is read from blob storage).
        job: the job's frozen plan (``parallel`` settings, declared input types).
        definition: the step with its inputs resolved to blob locations.

    Returns:
        The manifest: ``kind="files"`` or ``"tabular"``, mini-batches in plan order.

    Raises:
        DataError: the job is not parallel, the input is missing or unreadable, or the partition
            keys cannot be found.
        MLTableError: the MLTable is malformed or unsupported.
    """
    parallel = job.parallel
    if parallel is None:
        raise DataError(f"job {job.name!r} is not a parallel job; only parallel jobs are split", job=job.name)
    name = parallel.input_data
    declared = job.inputs.get(name)
    resolved = definition.inputs.get(name)
    if not isinstance(declared, DataInput) or not isinstance(resolved, ResolvedInput):
        raise DataError(
            f"job {job.name!r}: input_data names {name!r}, which is not a resolved data input of the step",
            job=job.name,
        )
    root = root_of(resolved.location)
    keys = parallel.partition_keys or None
    if declared.type == DataType.MLTABLE:
        table, folder = load_mltable(clients, root)
        if table.read is not None:
            from shared.data.tabular import plan_tabular  # pandas/pyarrow only for tables

            size = parallel.mini_batch_size or DEFAULT_BYTES_PER_MINI_BATCH
            return plan_tabular(clients, name, table, folder, mini_batch_size=size, partition_keys=keys)
        found = mltable_files(clients, table, folder)
        found.files = _file_rows(table, found)
        return plan_files(
            name, found, parallel.mini_batch_size, keys, partition_format=table.partition_format
        )
    if declared.type == DataType.URI_FILE:
        if keys:
            raise DataError(
                f"job {job.name!r}: partition_keys need a folder or MLTable input, not a uri_file"
            )
        found = single_file(clients, root)
    else:
        found = folder_files(clients, root)
    return plan_files(name, found, parallel.mini_batch_size, keys, partition_format=None)


def plan_files(
    input_name: str,
    found: FileSet,
    mini_batch_size: int | None,
    partition_keys: list[str] | None,
    *,
    partition_format: str | None,
) -> Manifest:
    """A file-list manifest of ``found`` (steps 3 and 4 of the module docstring)."""
    builder = ManifestBuilder("files", input_name, found.roots)
    if not found.files:
        logger.warning("input %s has no files: the step has no mini-batches", input_name)
    if partition_keys:
        for (root, _values), (key, files) in _partitions(found, partition_keys, partition_format).items():
            builder.add_files(
                [f.path for f in files],
                [f.size for f in files],
                [f.modified for f in files],
                root=root,
                key=key,
            )
        return builder.build(partition_keys=partition_keys)
    size = mini_batch_size or DEFAULT_FILES_PER_MINI_BATCH
    for (root, _folder), files in _by_directory(found.files).items():
        for start in range(0, len(files), size):
            chunk = files[start : start + size]
            builder.add_files(
                [f.path for f in chunk], [f.size for f in chunk], [f.modified for f in chunk], root=root
            )
    return builder.build()


def _by_directory(files: list[tuple[int, BlobFile]]) -> dict[tuple[int, str], list[BlobFile]]:
    groups: dict[tuple[int, str], list[BlobFile]] = {}
    for root, item in files:
        groups.setdefault((root, item.path.rpartition("/")[0]), []).append(item)
    return groups


def _partitions(found: FileSet, keys: list[str], partition_format: str | None) -> Groups:
    """Files grouped by their partition key values, in order of first appearance."""
    compiled = compile_partition_format(partition_format) if partition_format else None
    if compiled is not None:
        missing = [k for k in keys if k not in compiled.columns]
        if missing:
            raise DataError(
                f"partition_keys {missing} are not fields of the partition format {partition_format!r} "
                f"(it has {list(compiled.columns)})"
            )
    groups: Groups = {}
    for root, item in found.files:
        shown = found.display(root, item.path)
        if compiled is not None:
            values = compiled.extract(shown)
            if values is None:
                raise DataError(f"the path {shown!r} does not fit the partition format {partition_format!r}")
        else:
            values = dict(_hive_fields(shown))
            missing = [k for k in keys if k not in values]
            if missing:
                raise DataError(
                    f"cannot find partition keys {missing} in the path {shown!r}: give the input as an "
                    "MLTable with extract_columns_from_partition_format, or name folders key=value"
                )
        key = {k: _plain(values[k]) for k in keys}
        group = groups.setdefault((root, tuple(key.values())), (key, []))
        group[1].append(item)
    first_root: dict[tuple[KeyValue, ...], int] = {}
    for root, values_key in groups:
        if first_root.setdefault(values_key, root) != root:
            raise DataError(
                f"partition {dict(zip(keys, values_key, strict=True))} has files in several storage "
                "locations; keep each partition's files under one folder"
            )
    return groups


def _hive_fields(path: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for segment in path.split("/")[:-1]:
        name, equals, value = segment.partition("=")
        if equals and name:
            fields[name] = value
    return fields


def _plain(value: str | datetime) -> KeyValue:
    return value.isoformat() if isinstance(value, datetime) else value


def _file_rows(table: MLTable, found: FileSet) -> list[tuple[int, BlobFile]]:
    """Apply a file-list MLTable's row transformations (skip, take, take_random_sample) to its files."""
    files = found.files
    for step in table.transformations:
        if isinstance(step, Skip):
            files = files[step.count :]
        elif isinstance(step, Take):
            files = files[: step.count]
        elif isinstance(step, TakeRandomSample):
            seed = step.seed or 0
            files = [
                (root, item) for root, item in files if _unit(seed, f"{root}/{item.path}") < step.probability
            ]
    return files


def _unit(seed: int, text: str) -> float:
    """A reproducible number in [0, 1) for ``text`` under ``seed``."""
    return zlib.crc32(f"{seed}:{text}".encode()) / 2**32
