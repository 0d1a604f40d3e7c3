"""The pipeline spec language: Azure ML YAML models, located loading, bindings, the job graph, freezing.

Public API::

    compile_file(path, *, run_id, overrides={}) -> RunPlan
    compile_text(text, *, source, base_dir=None, run_id, overrides={}) -> RunPlan
    bundle_file(path, rewrite=None) -> str          # rewrite(PathUse) -> URI

Both compile functions raise :class:`shared.errors.SpecError` carrying every located issue; warnings
land in ``RunPlan.warnings``. ``docs/spec.md`` describes the accepted YAML.
"""

from shared.spec.bundle import PathUse, bundle_file
from shared.spec.compiler import compile_file, compile_text

__all__ = ["PathUse", "bundle_file", "compile_file", "compile_text"]
