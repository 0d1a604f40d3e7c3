"""Where a job output is written, and whether it is registered as a data asset.

Default location: ``runs/<run>/<job>/outputs/<output>`` (the ``runs`` container). An explicit
``path:`` must be a datastore URI; these templates are expanded in it:

- ``${{name}}`` and ``{run-id}``: the run id (Azure ML: the job name);
- ``${{output_name}}`` and ``{output-name}``: the output's name;
- ``${{default_datastore}}``: the default datastore (``settings.default_datastore`` of the pipeline,
  else ``FANOUT_DEFAULT_DATASTORE``, i.e. ``workspaceblobstore``: the ``data`` container).

``name:`` / ``version:`` register the output as that data asset when the job succeeds.
"""

from __future__ import annotations

from shared.plan import BlobData, DataType, OutputMode, OutputPlan
from shared.spec.bindings import find_expressions
from shared.spec.context import Context
from shared.spec.issues import Where
from shared.spec.job_outputs import OutputDraft
from shared.spec.locations import container_for_datastore
from shared.spec.values import parse_output_mode
from shared.storage import Container, output_path

_TEMPLATE_HINT = (
    "azureml://datastores/<store>/paths/<path>, with ${{name}}, ${{output_name}}, ${{default_datastore}}, "
    "{run-id} or {output-name}"
)


def output_plan(draft: OutputDraft, job: str, ctx: Context) -> OutputPlan | None:
    """The frozen output (None when its path or mode is invalid; errors recorded)."""
    issues = ctx.issues
    if draft.broken:
        return None
    mode = OutputMode.RW_MOUNT
    for spec, where in draft.layers:
        if spec.mode is not None:
            parsed = parse_output_mode(spec.mode, where / "mode", issues)
            if parsed is None:
                return None
            mode = parsed
            break
    location = BlobData(container=Container.RUNS.value, path=output_path(ctx.run_id, job, draft.name))
    for spec, where in draft.layers:
        if spec.path is not None:
            found = output_location(spec.path, draft.name, draft.type, where / "path", ctx)
            if found is None:
                return None
            location = found
            break
    asset_name = asset_version = None
    for spec, where in draft.layers:
        if spec.name is not None or spec.version is not None:
            if spec.name is None:
                issues.error(
                    where / "version", "an output version needs a name", "name: <asset name>", key=True
                )
                return None
            asset_name, asset_version = spec.name, spec.version
            break
    return OutputPlan(
        type=draft.type, mode=mode, location=location, asset_name=asset_name, asset_version=asset_version
    )


def output_location(
    template: str, output: str, kind: DataType, where: Where, ctx: Context
) -> BlobData | None:
    """The blob location an output ``path:`` template names."""
    issues = ctx.issues
    text = template.strip()
    for found in find_expressions(text):
        if found.error is not None:
            issues.error(where, found.error.message, _TEMPLATE_HINT)
            return None
        assert found.expr is not None
        if found.expr.kind not in ("name", "output_name", "default_datastore"):
            issues.error(where, f"{found.expr} cannot be used in an output path", _TEMPLATE_HINT)
            return None
    replacements = {
        "${{name}}": ctx.run_id,
        "${{output_name}}": output,
        "${{default_datastore}}": ctx.default_datastore,
        "{run-id}": ctx.run_id,
        "{output-name}": output,
    }
    expanded = text
    for found in list(find_expressions(text))[::-1]:
        assert found.expr is not None
        expanded = expanded[: found.start] + "${{" + found.expr.kind + "}}" + expanded[found.end :]
    for key, value in replacements.items():
        expanded = expanded.replace(key, value)
    prefix = "azureml://datastores/"
    if not expanded.startswith(prefix) or "/paths/" not in expanded:
        issues.error(where, f"an output path must be a datastore URI, got {template!r}", _TEMPLATE_HINT)
        return None
    store, _, path = expanded[len(prefix) :].partition("/paths/")
    container = container_for_datastore(store, where, issues)
    if container is None:
        return None
    if kind is DataType.URI_FILE and (path.endswith("/") or not path.strip("/")):
        issues.error(
            where, "a uri_file output path must name a file", "azureml://datastores/<store>/paths/a/b.csv"
        )
        return None
    path = path.strip("/")
    if not path:
        issues.error(where, "the output path names no folder", "azureml://datastores/<store>/paths/<folder>")
        return None
    return BlobData(container=container, path=path)
