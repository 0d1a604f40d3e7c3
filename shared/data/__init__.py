"""Input resolution, MLTable reading, and partitioning inputs into mini-batch descriptors.

The public API (what the runtime and the orchestration call):

- :func:`plan_mini_batches` (``planner``): split a parallel job's ``input_data`` into a
  :class:`Manifest` of compact :class:`MiniBatch` descriptors;
- :func:`save_manifest` / :func:`load_manifest` (``manifest``): store it once per step;
- :func:`materialize` (``materialize``): one mini-batch as ``run()`` receives it
  (:class:`MaterializedBatch`: local file paths or a DataFrame);
- :func:`materialize_input` / :func:`input_argument`: whole non-split inputs for ``${{inputs.x}}``.

Modules: ``locations`` (roots, URLs), ``listing`` (streamed blob listings), ``sources`` (input ->
files), ``mltable`` (the MLTable models) and ``mltable_parser`` (reading the file), ``patterns``
(globs, partition formats), ``ranges`` (record-aligned byte ranges), ``readers``/``transforms``
(tabular reading), ``tabular`` (tabular planning), ``fetch`` (whole-blob and ranged reads for
workers).
"""

from shared.data.manifest import (
    Manifest,
    ManifestBuilder,
    MiniBatch,
    ReadOptions,
    SourceFile,
    TabularPart,
    load_manifest,
    save_manifest,
)
from shared.data.materialize import (
    MaterializedBatch,
    MiniBatchDataset,
    direct_url,
    input_argument,
    materialize,
    materialize_input,
)
from shared.data.planner import DEFAULT_BYTES_PER_MINI_BATCH, DEFAULT_FILES_PER_MINI_BATCH, plan_mini_batches

__all__ = [
    "DEFAULT_BYTES_PER_MINI_BATCH",
    "DEFAULT_FILES_PER_MINI_BATCH",
    "Manifest",
    "ManifestBuilder",
    "MaterializedBatch",
    "MiniBatch",
    "MiniBatchDataset",
    "ReadOptions",
    "SourceFile",
    "TabularPart",
    "direct_url",
    "input_argument",
    "load_manifest",
    "materialize",
    "materialize_input",
    "plan_mini_batches",
    "save_manifest",
]
