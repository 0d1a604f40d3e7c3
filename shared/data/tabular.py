"""Planning tabular inputs (an MLTable with ``read_*``) into mini-batches of byte ranges or row groups.

Reference §1.3: a tabular mini-batch is about ``mini_batch_size`` bytes *of the source* (default
1 MiB) and never crosses a file.

1. Resolve the files (``shared.data.sources``); empty files are skipped.
2. Delimited: read the head of the first file once (header + up to 200 rows for type inference);
   with ``all_files_different_headers`` read every file's header and unite the columns.
3. Split each file: delimited and JSON lines into byte ranges aligned to records at read time
   (``shared.data.ranges``) — except files read with ``support_multi_line: true`` or in UTF-16/32,
   which are one mini-batch each; parquet into runs of whole row groups up to the size (a file with
   one row group is one mini-batch).
4. ``take``/``skip`` are global row operations: when present, the planner counts the rows of the
   parts in order — reading them, or from parquet metadata — only as far as the row window
   reaches, gives the parts inside it their local row slice and drops the rest. Without them
   nothing is read beyond step 2.
5. ``partition_keys``: one mini-batch per distinct key combination present. Keys that are fields
   of the MLTable's partition format are read from the paths (no data read, whole files grouped);
   other keys are columns, found by reading every file once at plan time, and each mini-batch keeps
   only its rows (``key_filter``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pyarrow.parquet as pq

from shared.data.locations import BlobFile, BlobRoot, open_container
from shared.data.manifest import (
    ColumnKind,
    KeyValue,
    Manifest,
    ManifestBuilder,
    ReadOptions,
    SourceFile,
    TabularFormat,
    TabularPart,
)
from shared.data.mltable import (
    Encoding,
    HeaderMode,
    MLTable,
    ReadDelimited,
    ReadJsonLines,
    ReadParquet,
    Skip,
    Take,
    TakeRandomSample,
    Transformation,
)
from shared.data.patterns import compile_partition_format
from shared.data.ranges import RangeFile, blob_fetcher, split_ranges
from shared.data.readers import HEAD_BYTES, INFER_ROWS, header_names, infer_types, read_part, read_raw
from shared.data.sources import FileSet, mltable_files
from shared.data.transforms import key_value
from shared.errors import DataError, MLTableError
from shared.storage import StorageClients

logger = logging.getLogger(__name__)

Window = tuple[int, int | None]


def plan_tabular(
    clients: StorageClients,
    input_name: str,
    table: MLTable,
    folder: BlobRoot,
    *,
    mini_batch_size: int,
    partition_keys: list[str] | None,
) -> Manifest:
    """A tabular manifest for ``table`` (see the module docstring for the steps)."""
    window = row_window(table)
    if window is not None and partition_keys:
        raise DataError("take/skip cannot be combined with partition_keys: a partition is not a row range")
    found = mltable_files(clients, table, folder)
    read, sources = _describe_sources(clients, table, found)
    steps: list[Transformation] = [
        s
        for s in table.transformations
        if not isinstance(s, ReadDelimited | ReadParquet | ReadJsonLines | Take | Skip)
    ]
    stub = Manifest(
        kind="tabular",
        input_name=input_name,
        roots=found.roots,
        count=0,
        read=read,
        sources=sources,
        transformations=steps,
    )
    builder = ManifestBuilder("tabular", input_name, found.roots)
    if partition_keys:
        _plan_partitions(clients, stub, table, partition_keys, builder)
        return builder.build(read=read, sources=sources, transformations=steps, partition_keys=partition_keys)
    pieces = _split(clients, stub, mini_batch_size)
    if window is not None:
        pieces = _apply_window(clients, stub, pieces, window)
    for part, items in pieces:
        builder.add_parts([part], items=items)
    return builder.build(read=read, sources=sources, transformations=steps)


def row_window(table: MLTable) -> Window | None:
    """The global row window ``[first, last)`` that the MLTable's take/skip select (None: no take/skip).

    Raises:
        MLTableError: take/skip after take_random_sample (the window would depend on the sample).
    """
    first, last = 0, None
    sampled = False
    present = False
    for step in table.transformations:
        if isinstance(step, TakeRandomSample):
            sampled = True
        elif isinstance(step, Skip | Take):
            if sampled:
                raise MLTableError(
                    f"{step.kind} after take_random_sample is not supported: put take/skip before the sample",
                    transformation=step.kind,
                )
            present = True
            if isinstance(step, Skip):
                first = first + step.count if last is None else min(last, first + step.count)
            else:
                last = first + step.count if last is None else min(last, first + step.count)
    return (first, last) if present else None


# --- sources ------------------------------------------------------------------------------------------


def _describe_sources(
    clients: StorageClients, table: MLTable, found: FileSet
) -> tuple[ReadOptions, list[SourceFile]]:
    read = table.read
    files = [(root, item) for root, item in found.files if item.size > 0]
    if isinstance(read, ReadParquet):
        options = ReadOptions(format=TabularFormat.PARQUET, include_path_column=read.include_path_column)
        return options, [_source(found, root, item) for root, item in files]
    if isinstance(read, ReadJsonLines):
        options = ReadOptions(
            format=TabularFormat.JSON_LINES,
            include_path_column=read.include_path_column,
            invalid_lines=read.invalid_lines,
            encoding=read.encoding,
        )
        return options, [_source(found, root, item) for root, item in files]
    if not isinstance(read, ReadDelimited):
        raise MLTableError("the MLTable has no read transformation")
    base = ReadOptions(
        format=TabularFormat.DELIMITED,
        delimiter=read.delimiter,
        encoding=read.encoding,
        header=read.header,
        empty_as_string=read.empty_as_string,
        include_path_column=read.include_path_column,
        support_multi_line=read.support_multi_line,
    )
    if not files:
        return base.model_copy(update={"columns": [], "column_types": {}}), []
    codec = read.encoding.codec
    heads = {0: _head(clients, found, *files[0], codec)}
    if read.header == HeaderMode.ALL_FILES_DIFFERENT_HEADERS:
        heads.update({i: _head(clients, found, *files[i], codec) for i in range(1, len(files))})
    own_columns: dict[int, list[str]] = {}
    types: dict[str, ColumnKind] = {}
    for position, (first_line, rest) in heads.items():
        if read.header == HeaderMode.NO_HEADER:
            sample = first_line + rest
            columns = _numbered(sample, base)
        else:
            sample = rest
            columns = header_names(first_line, _utf8(base))
        own_columns[position] = columns
        inferred = (
            infer_types(sample, _utf8(base), columns)
            if read.infer_column_types
            else dict.fromkeys(columns, ColumnKind.STRING)
        )
        for column, kind in inferred.items():
            types[column] = _merge(types.get(column), kind)
    united: list[str] = []
    for columns in own_columns.values():
        united.extend(c for c in columns if c not in united)
    sources: list[SourceFile] = []
    for position, (root, item) in enumerate(files):
        has_header = read.header in {
            HeaderMode.ALL_FILES_SAME_HEADERS,
            HeaderMode.ALL_FILES_DIFFERENT_HEADERS,
        } or (read.header == HeaderMode.FROM_FIRST_FILE and position == 0)
        own = own_columns.get(position) if read.header == HeaderMode.ALL_FILES_DIFFERENT_HEADERS else None
        sources.append(
            _source(found, root, item).model_copy(
                update={"has_header": has_header, "columns": own if own != united else None}
            )
        )
    return base.model_copy(update={"columns": united, "column_types": types}), sources


def _source(found: FileSet, root: int, item: BlobFile) -> SourceFile:
    return SourceFile(root=root, path=item.path, size=item.size, display=found.display(root, item.path))


def _head(
    clients: StorageClients, found: FileSet, root: int, item: BlobFile, codec: str
) -> tuple[bytes, bytes]:
    """``(first line, following complete lines)`` of a file's first bytes, re-encoded as UTF-8.

    Decoding first makes the line split right for every encoding (UTF-16 newlines are two bytes).
    """
    location = found.roots[root]
    shown = found.display(root, item.path)
    fetch = blob_fetcher(open_container(clients, location), location.blob_name(item.path), shown)
    text = fetch(0, min(HEAD_BYTES, item.size)).decode(codec, errors="ignore")
    lines = text.splitlines(keepends=True)
    if not lines:
        return b"", b""
    if item.size > HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    return lines[0].encode(), "".join(lines[1 : INFER_ROWS + 1]).encode()


def _utf8(options: ReadOptions) -> ReadOptions:
    return options.model_copy(update={"encoding": Encoding.UTF8})


def _numbered(sample: bytes, options: ReadOptions) -> list[str]:
    widest = max(
        (len(header_names(line, _utf8(options))) for line in sample.splitlines() if line.strip()), default=0
    )
    return [f"Column{i}" for i in range(1, widest + 1)]


def _merge(known: ColumnKind | None, new: ColumnKind) -> ColumnKind:
    if known is None or known == new:
        return new
    if {known, new} == {ColumnKind.INT, ColumnKind.FLOAT}:
        return ColumnKind.FLOAT
    return ColumnKind.STRING


# --- splitting ----------------------------------------------------------------------------------------


def _split(clients: StorageClients, manifest: Manifest, target: int) -> list[tuple[TabularPart, int | None]]:
    read = manifest.read
    assert read is not None
    pieces: list[tuple[TabularPart, int | None]] = []
    for index, source in enumerate(manifest.sources):
        if read.format == TabularFormat.PARQUET:
            pieces.extend(_row_group_parts(clients, manifest, index, target))
        elif read.support_multi_line or not read.encoding.splittable or source.size <= target:
            pieces.append((TabularPart(source=index), None))
        else:
            ranges = split_ranges(source.size, target)
            for position, (start, end) in enumerate(ranges):
                last = position == len(ranges) - 1
                pieces.append((TabularPart(source=index, start=start, end=None if last else end), None))
    return pieces


def _row_group_parts(
    clients: StorageClients, manifest: Manifest, index: int, target: int
) -> Iterator[tuple[TabularPart, int | None]]:
    source = manifest.sources[index]
    root = manifest.roots[source.root]
    fetch = blob_fetcher(open_container(clients, root), root.blob_name(source.path), source.display)
    try:
        metadata = pq.ParquetFile(RangeFile(fetch, source.size, block=256 * 1024)).metadata
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {source.display} as parquet: {exc}", path=source.display) from exc
    groups: list[int] = []
    rows = 0
    size = 0
    for group in range(metadata.num_row_groups):
        meta = metadata.row_group(group)
        group_size = sum(meta.column(c).total_compressed_size for c in range(meta.num_columns))
        if groups and size + group_size > target:
            yield TabularPart(source=index, row_groups=groups), rows
            groups, rows, size = [], 0, 0
        groups.append(group)
        rows += meta.num_rows
        size += group_size
    if groups:
        whole = len(groups) == metadata.num_row_groups
        yield TabularPart(source=index, row_groups=None if whole else groups), rows


def _apply_window(
    clients: StorageClients, manifest: Manifest, pieces: list[tuple[TabularPart, int | None]], window: Window
) -> list[tuple[TabularPart, int | None]]:
    """Keep the parts inside the global row window, each with its local row slice."""
    first, last = window
    kept: list[tuple[TabularPart, int | None]] = []
    offset = 0
    for part, known in pieces:
        if last is not None and offset >= last:
            break
        if last is None and offset >= first:  # past the skipped rows: the rest is kept whole
            kept.append((part, known))
            continue
        count = known if known is not None else len(read_raw(clients, manifest, part))
        begin, end = max(first - offset, 0), count if last is None else min(last - offset, count)
        if begin < end:
            rows = None if (begin, end) == (0, count) else (begin, end)
            kept.append((part.model_copy(update={"rows": rows}), end - begin))
        offset += count
    return kept


# --- partitions ---------------------------------------------------------------------------------------


def _plan_partitions(
    clients: StorageClients, manifest: Manifest, table: MLTable, keys: list[str], builder: ManifestBuilder
) -> None:
    read = manifest.read
    assert read is not None
    partition_format = table.partition_format
    fields = compile_partition_format(partition_format).columns if partition_format else ()
    groups: dict[tuple[KeyValue, ...], tuple[dict[str, KeyValue], list[int], int]] = {}
    if all(k in fields for k in keys):
        compiled = compile_partition_format(partition_format or "")
        for index, source in enumerate(manifest.sources):
            values = compiled.extract(source.display)
            if values is None:
                raise MLTableError(
                    f"the path {source.display!r} does not fit the partition format {partition_format!r}",
                    transformation="extract_columns_from_partition_format",
                )
            key = {k: key_value(values[k]) for k in keys}
            entry = groups.setdefault(tuple(key.values()), (key, [], 0))
            entry[1].append(index)
        for key, indexes, _rows in groups.values():
            builder.add_parts([TabularPart(source=i) for i in indexes], key=key)
        return
    for index in range(len(manifest.sources)):
        frame = read_part(clients, manifest, TabularPart(source=index))
        missing = [k for k in keys if k not in frame.columns]
        if missing:
            raise DataError(
                f"partition_keys {missing} are not columns of the table (columns: "
                f"{[str(c) for c in frame.columns]}); path fields need extract_columns_from_partition_format",
                path=manifest.sources[index].display,
            )
        counts = frame.groupby(keys, dropna=True, sort=False).size()
        for combination, rows in counts.items():
            combo = combination if isinstance(combination, tuple) else (combination,)
            key = {k: key_value(v) for k, v in zip(keys, combo, strict=True)}
            label = tuple(key.values())
            known, indexes, total = groups.get(label, (key, [], 0))
            groups[label] = (known, [*indexes, index], total + int(rows))
    for key, indexes, rows in groups.values():
        builder.add_parts([TabularPart(source=i) for i in indexes], items=rows, key=key)
    builder.key_filter = True
