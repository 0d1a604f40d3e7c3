"""Compiling a spec into a frozen :class:`~shared.plan.RunPlan` — the public entry points.

Phases (each reports into one collector; all errors are raised together at the end):

1. load the YAML with positions (:mod:`shared.spec.loader`) and validate the pipeline's shape;
2. pipeline inputs (``--set`` applied) and outputs (:mod:`shared.spec.pipeline_io`);
3. each job and its component (:mod:`shared.spec.components`);
4. each job's outputs, then inputs, resolving every binding (:mod:`shared.spec.job_io`);
5. the job graph in topological order, or the cycle (:mod:`shared.spec.graph`);
6. each job frozen: run settings, arguments, code, environment, compute, output locations.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from shared.errors import SpecError, SpecIssue
from shared.plan import DataInput, JobOutputRef, JobPlan, JobType, LiteralInput, RunPlan
from shared.settings import ExecutorKind, get_settings
from shared.spec.command import FrozenCommand, freeze_command
from shared.spec.components import JobSource, load_job
from shared.spec.context import Context
from shared.spec.fields import NAME_RE
from shared.spec.graph import topological_order
from shared.spec.issues import Issues, Where, suggest
from shared.spec.job_io import Resolver
from shared.spec.job_outputs import OutputDraft
from shared.spec.loader import MAX_TEXT_BYTES, load_text
from shared.spec.locations import compute_name
from shared.spec.outputs import output_plan
from shared.spec.parallel import FrozenParallel, freeze_parallel
from shared.spec.pipeline_io import pipeline_inputs, pipeline_outputs
from shared.spec.schema import PipelineSpec
from shared.spec.validation import validate
from shared.spec.values import Value

logger = logging.getLogger(__name__)

_NO_OVERRIDES: Mapping[str, str] = {}


def compile_file(
    path: Path,
    *,
    run_id: str,
    overrides: Mapping[str, str] = _NO_OVERRIDES,
    confine_to: Path | None = None,
) -> RunPlan:
    """Validate the pipeline file at ``path`` and freeze it into a run plan.

    Args:
        path: the pipeline YAML; relative paths inside it are relative to its folder.
        run_id: the run the plan is for (default output locations and ``${{name}}`` use it).
        overrides: ``--set`` pairs, ``{"inputs.x": "value"}`` (or ``{"x": "value"}``); relative paths
            in them are relative to the current directory.
        confine_to: when the spec came from someone else (an uploaded archive unpacked on a server),
            the folder every local path must stay inside — absolute paths, ``..`` and symlinks that
            lead out are errors.

    Raises:
        SpecError: with every located issue, when the spec has at least one error.
    """
    path = Path(path)
    name = str(path)
    issues = Issues()
    try:
        raw = path.read_bytes()
        if len(raw) > MAX_TEXT_BYTES:
            raise SpecError([_issue(name, f"the spec is larger than {MAX_TEXT_BYTES // 1024} KiB")])
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise SpecError([_issue(name, "the file does not exist")]) from None
    except IsADirectoryError:
        raise SpecError([_issue(name, "this is a folder, not a pipeline file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([_issue(name, f"the file cannot be read: {exc}")]) from None
    ctx = Context(
        issues, run_id, path.parent.absolute(), Path.cwd(), get_settings().default_datastore, confine_to
    )
    return _compile(text, name, ctx, overrides)


def compile_text(
    text: str,
    *,
    source: str,
    base_dir: Path | None = None,
    run_id: str,
    overrides: Mapping[str, str] = _NO_OVERRIDES,
    confine_to: Path | None = None,
) -> RunPlan:
    """Validate a spec given as YAML or JSON text (a blob, an HTTP body) and freeze it.

    Args:
        text: the spec.
        source: the name used in error locations (e.g. the blob name).
        base_dir: folder that relative paths are relative to; None means the spec must be
            self-contained (bundled): relative paths and ``component: ./x.yml`` are errors.
        run_id: the run the plan is for.
        overrides: ``--set`` pairs; relative paths in them are relative to ``base_dir``.
        confine_to: the folder every local path must stay inside (see :func:`compile_file`).

    Raises:
        SpecError: with every located issue.
    """
    issues = Issues()
    base = base_dir.absolute() if base_dir is not None else None
    ctx = Context(issues, run_id, base, base, get_settings().default_datastore, confine_to)
    return _compile(text, source, ctx, overrides)


def _issue(name: str, message: str) -> SpecIssue:
    return SpecIssue(name, 1, 1, "", message, "a readable UTF-8 pipeline YAML file")


def _compile(text: str, name: str, ctx: Context, overrides: Mapping[str, str]) -> RunPlan:
    issues = ctx.issues
    data, source = load_text(text, name, issues)
    root = Where(source)
    spec = validate(PipelineSpec, data, root, issues, what="a pipeline mapping") if data is not None else None
    if spec is None:
        issues.raise_if_errors()
        raise SpecError([_issue(name, "the spec is empty")])
    settings = spec.settings
    if settings is not None and settings.default_datastore:
        ctx.default_datastore = settings.default_datastore.strip().removeprefix("azureml:")
    default_compute = None
    if settings is not None and settings.default_compute is not None:
        default_compute = compute_name(
            settings.default_compute, root / "settings" / "default_compute", issues
        )
    inputs = pipeline_inputs(spec.inputs, root / "inputs", ctx, overrides)
    outputs = pipeline_outputs(spec.outputs, root / "outputs", ctx)
    if not spec.jobs and not issues.has_error_under(root / "jobs"):
        issues.error(
            root / "jobs", "the pipeline has no jobs", "jobs: {<name>: {type: parallel, ...}}", key=True
        )
    sources: dict[str, JobSource] = {}
    for job_name, raw in spec.jobs.items():
        at = root / "jobs" / job_name
        if not NAME_RE.match(job_name) or len(job_name) > 255:
            issues.error(
                at, f"{job_name!r} is not a valid job name", "letters, digits, underscores", key=True
            )
            continue
        loaded = load_job(job_name, raw, at, ctx)
        if loaded is not None:
            sources[job_name] = loaded
    resolver = Resolver(ctx, inputs, outputs, sources)
    drafts = {name: resolver.job_outputs(job) for name, job in sources.items()}
    values = {name: resolver.job_inputs(job) for name, job in sources.items()}
    for unbound in resolver.unbound_pipeline_outputs():
        issues.error(
            root / "outputs" / unbound,
            f"pipeline output '{unbound}' is not bound to any job output",
            f"outputs: {{<name>: ${{{{parent.outputs.{unbound}}}}}}} in one job",
            key=True,
        )
    order, cycle = topological_order(list(sources), resolver.edges)
    if cycle:
        issues.error(
            root / "jobs" / cycle[0],
            "the jobs form a cycle: " + " -> ".join(cycle) + " (each consumes an output of the next)",
            "a graph without cycles",
            key=True,
        )
        order = list(sources)
    jobs = [
        plan
        for plan in (
            _freeze_job(
                sources[n], values[n], drafts[n], resolver=resolver, default_compute=default_compute, ctx=ctx
            )
            for n in order
        )
        if plan is not None
    ]
    issues.raise_if_errors()
    position = {name: index for index, name in enumerate(order)}
    jobs = [
        job.model_copy(update={"depends_on": sorted(job.depends_on, key=position.__getitem__)})
        for job in jobs
    ]
    pipeline_outputs_plan = {
        draft.pipeline_output: JobOutputRef(job=job_name, output=draft.name)
        for job_name, job_drafts in drafts.items()
        for draft in job_drafts.values()
        if draft.pipeline_output is not None
    }
    return RunPlan(
        run_id=ctx.run_id,
        display_name=spec.display_name,
        description=spec.description,
        experiment_name=spec.experiment_name,
        tags=spec.tags or {},
        default_compute=default_compute,
        continue_on_step_failure=bool(settings and settings.continue_on_step_failure),
        force_rerun=bool(settings and settings.force_rerun),
        inputs={k: v.value.plan for k, v in inputs.items() if v.value.plan is not None},
        outputs={k: pipeline_outputs_plan[k] for k in outputs if k in pipeline_outputs_plan},
        jobs=jobs,
        source=name,
        warnings=[str(issue) for issue in sorted(issues.warnings, key=lambda i: (i.file, i.line, i.column))],
    )


def _freeze_job(
    job: JobSource,
    inputs: Mapping[str, Value],
    drafts: Mapping[str, OutputDraft],
    *,
    resolver: Resolver,
    default_compute: str | None,
    ctx: Context,
) -> JobPlan | None:
    output_names = frozenset(drafts)
    outputs = {}
    for name, draft in drafts.items():
        plan = output_plan(draft, job.name, ctx)
        if plan is not None:
            outputs[name] = plan
    compute = _compute(job, default_compute, ctx)
    layered = job.layered
    frozen: FrozenParallel | FrozenCommand | None
    if job.kind is JobType.PARALLEL:
        frozen = freeze_parallel(job, inputs, output_names, resolver.inputs, ctx)
    else:
        frozen = freeze_command(job, inputs, output_names, resolver.inputs, ctx)
    if frozen is None:
        return None
    settings: dict[str, object] = (
        {"parallel": frozen.settings} if isinstance(frozen, FrozenParallel) else {"command": frozen.settings}
    )
    deterministic = layered.get("is_deterministic")[0]
    return JobPlan(
        name=job.name,
        type=job.kind,
        display_name=layered.get("display_name")[0],
        compute=compute,
        code=frozen.code,
        environment=frozen.environment,
        inputs={k: v.plan for k, v in inputs.items() if isinstance(v.plan, LiteralInput | DataInput)},
        outputs=outputs,
        environment_variables=layered.merged_dict("environment_variables"),
        instance_count=frozen.instance_count,
        depends_on=sorted(resolver.edges.get(job.name, set())),
        allow_reuse=deterministic is not False,
        **settings,
    )


def _compute(job: JobSource, default_compute: str | None, ctx: Context) -> str | None:
    text = job.job.compute
    where = job.where / "compute"
    name = compute_name(text, where, ctx.issues) if text is not None else default_compute
    settings = get_settings()
    if settings.executor is ExecutorKind.BATCH:
        targets = settings.compute_targets
        if name is None and "default" not in targets:
            ctx.issues.error(
                job.where, f"job '{job.name}' has no compute", "compute: azureml:<name>", key=True
            )
        elif name is not None and name not in targets and "default" not in targets:
            ctx.issues.error(
                where if text is not None else job.where,
                f"compute '{name}' has no Azure Batch pool",
                f"add it to FANOUT_COMPUTE_TARGETS ({suggest(name, targets)})",
            )
    return name
