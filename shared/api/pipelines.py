"""``POST /api/pipelines``: validate a spec, freeze its plan, start the run.

The body is one of:

- ``application/yaml`` (or ``text/yaml``, ``application/x-yaml``, ``text/plain``): the spec itself;
- ``application/json``: :class:`~shared.api.models.SubmitPipelineJson` — the spec as text or object,
  plus ``overrides``;
- ``multipart/form-data``: field ``spec`` (the spec, as a file or text), optional ``snapshot`` (the code
  folder as a zip), any number of ``set`` fields (``path=value``) and/or one ``overrides`` field (a JSON
  object).

A zip is the folder the spec's relative paths are relative to (as on the submitter's disk): it is
checked (size and file limits, zip-slip, bombs) and stored like a dropped snapshot, unpacked into a
scratch folder, and the spec is bundled against it exactly as ``fanout submit`` does (each ``code:``
folder becomes a snapshot, local data is uploaded content-addressed). Without a zip the spec must be
self-contained (storage URIs, assets, snapshot references). Nothing the spec names is imported or run
here: validation is static.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

from pydantic import ValidationError

from shared.api.context import ApiContext
from shared.api.http import ApiRequest
from shared.api.models import SubmitAccepted, SubmitPipelineJson, SubmitPipelineRequest
from shared.api.multipart import Part, parse_multipart
from shared.api.runs import run_url
from shared.errors import ApiError, SpecError
from shared.ingest import new_run_id, require_no_local_files
from shared.orchestration.client import start_run
from shared.telemetry import inject_trace_context, start_span

logger = logging.getLogger(__name__)

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"})
JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"
SUPPORTED = sorted({*YAML_TYPES, JSON_TYPE, MULTIPART_TYPE})


# --- parsing the body ----------------------------------------------------------------------------


def parse_submit_request(request: ApiRequest) -> SubmitPipelineRequest:
    """The submission carried by ``request``, whatever its content type.

    Raises:
        ApiError: 415 for an unsupported content type; 400 for an empty or malformed body (bad JSON,
            bad multipart, a missing ``spec`` field, a ``set`` without ``=``...).
    """
    content_type = request.content_type
    if not request.body:
        raise ApiError("the request body is empty; send the pipeline spec (YAML or JSON)")
    if content_type in YAML_TYPES or content_type == "":
        return SubmitPipelineRequest(spec_text=_utf8(request.body, "the request body"))
    if content_type == JSON_TYPE:
        return _from_json(request.body)
    if content_type == MULTIPART_TYPE:
        return _from_multipart(request.body, request.headers.get("content-type", ""))
    raise ApiError(
        f"unsupported Content-Type {content_type!r}; send one of {', '.join(SUPPORTED)}",
        status=415,
    )


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(f"{what} is not UTF-8 text (byte {exc.start})") from exc


def _from_json(body: bytes) -> SubmitPipelineRequest:
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ApiError(
            f"the JSON body is malformed at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from exc
    try:
        parsed = SubmitPipelineJson.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}" for err in exc.errors()
        )
        raise ApiError(
            f"the JSON body is not a submission: {problems}; expected "
            '{"spec": "<YAML text or spec object>", "overrides": {"inputs.x": "1"}}'
        ) from exc
    spec_text = parsed.spec if isinstance(parsed.spec, str) else json.dumps(parsed.spec, indent=2)
    return SubmitPipelineRequest(
        spec_text=spec_text, source=parsed.source or "request", overrides=parsed.overrides
    )


def _from_multipart(body: bytes, content_type_header: str) -> SubmitPipelineRequest:
    parts = parse_multipart(body, content_type_header)
    by_name: dict[str, list[Part]] = {}
    for part in parts:
        by_name.setdefault(part.name, []).append(part)
    unknown = sorted(set(by_name) - {"spec", "snapshot", "set", "overrides"})
    if unknown:
        raise ApiError(
            f"unknown form field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
            "expected spec, snapshot, set, overrides",
            fields=unknown,
        )
    for single in ("spec", "snapshot", "overrides"):
        if len(by_name.get(single, [])) > 1:
            raise ApiError(f"form field {single!r} was sent more than once", field=single)
    if "spec" not in by_name:
        raise ApiError("the form has no 'spec' field; send the pipeline spec in it", field="spec")
    spec = by_name["spec"][0]
    overrides: dict[str, str] = {}
    if "overrides" in by_name:
        overrides.update(_overrides_json(by_name["overrides"][0].text()))
    for part in by_name.get("set", []):
        key, equals, value = part.text().partition("=")
        if not equals or not key.strip():
            raise ApiError(f"form field 'set' must be 'path=value', got {part.text()!r}", field="set")
        overrides[key.strip()] = value
    snapshot = by_name.get("snapshot", [None])[0]
    return SubmitPipelineRequest(
        spec_text=spec.text(),
        source=spec.filename or "request",
        overrides=overrides,
        snapshot=snapshot.data if snapshot is not None else None,
        snapshot_name=(snapshot.filename or "snapshot.zip") if snapshot is not None else None,
    )


def _overrides_json(text: str) -> dict[str, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(f"form field 'overrides' is not JSON: {exc.msg}", field="overrides") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ApiError(
            'form field \'overrides\' must be a JSON object like {"inputs.x": "1"}', field="overrides"
        )
    return {key: item if isinstance(item, str) else json.dumps(item) for key, item in value.items()}


# --- the handler ---------------------------------------------------------------------------------


def submit_pipeline(
    context: ApiContext, submission: SubmitPipelineRequest, api_base: str
) -> tuple[SubmitAccepted, int]:
    """Validate and start a run; 202 with the run id and where to follow it.

    Raises:
        SpecError: the spec is invalid (every located issue).
        SnapshotError: the zip was rejected.
        ApiError: the plan needs files from the submitter's machine that were not sent.
    """
    from shared.snapshot import pin_code_snapshots
    from shared.spec import compile_text  # heavy: imported when a spec arrives

    with start_span("fanout.submit", attributes={"fanout.source": submission.source}) as span:
        snapshot_id: str | None = None
        spec_text, overrides = submission.spec_text, submission.overrides
        if submission.snapshot is not None:
            snapshot_id, spec_text, overrides = _bundle_with_archive(context, submission)
        run_id = new_run_id(submission.source)
        span.set_attribute("fanout.run_id", run_id)
        plan = compile_text(
            spec_text, source=submission.source, base_dir=None, run_id=run_id, overrides=overrides
        )
        require_no_local_files(plan)
        plan = pin_code_snapshots(context.clients, plan)
        plan = plan.model_copy(update={"trace": inject_trace_context()})
        started = start_run(context.clients, context.require_durable(), plan)
    logger.info("run %s submitted over HTTP from %s", started, submission.source)
    url = run_url(api_base, started)
    answer = SubmitAccepted(
        run_id=started,
        status="Queued",
        status_url=url,
        cancel_url=f"{url}/cancel",
        snapshot=snapshot_id,
        warnings=plan.warnings,
    )
    return answer, 202


def _bundle_with_archive(
    context: ApiContext, submission: SubmitPipelineRequest
) -> tuple[str, str, dict[str, str]]:
    """Store the zip (checked like a dropped one), unpack it, and bundle the spec against it.

    The zip is the folder the spec's relative paths are relative to, as on the submitter's disk; the
    spec is placed at its root under its file name. Each ``code:`` folder becomes a snapshot and each
    local data path (also in ``set`` values) is uploaded, exactly as ``fanout submit`` does. Returns
    the archive's snapshot id, the self-contained spec and the overrides.

    Raises:
        SnapshotError: the zip was rejected. SpecError: the spec is invalid (located in its file name).
    """
    from shared.snapshot import HashCache, ingest_snapshot_archive, materialize_snapshot
    from shared.submission import prepare_submission

    archive = submission.snapshot or b""
    record = ingest_snapshot_archive(context.clients, archive, submission.snapshot_name or "code.zip")
    with tempfile.TemporaryDirectory(prefix="fanout-submit-") as scratch:
        root = materialize_snapshot(context.clients, record.snapshot_id, Path(scratch) / "snapshots")
        spec_path = root / _spec_file_name(submission.source)
        spec_path.write_text(submission.spec_text, encoding="utf-8")
        overrides = {key: _inside(root, value) for key, value in submission.overrides.items()}
        try:
            # No hash cache: the scratch files are new every time (and the app folder may be read-only).
            bundled = prepare_submission(
                context.clients,
                spec_path,
                overrides,
                settings=context.settings,
                cache=HashCache(None),
                confine_to=root,
            )
        except SpecError as error:
            raise _relocated(error, root) from None
    return record.snapshot_id, bundled.spec_text, dict(bundled.overrides)


def _spec_file_name(source: str) -> str:
    name = Path(source.replace("\\", "/")).name
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".")
    if not safe or safe == "request":
        return "pipeline.yml"
    return safe if safe.endswith((".yml", ".yaml", ".json")) else f"{safe}.yml"


def _inside(root: Path, value: str) -> str:
    """A ``set`` value that is a relative path inside the zip, made absolute; others unchanged."""
    if "://" in value or value.startswith(("/", "azureml:")) or not value.strip():
        return value
    candidate = (root / value).resolve()
    if candidate.is_relative_to(root.resolve()) and candidate.exists():
        return str(candidate)
    return value


def _relocated(error: SpecError, root: Path) -> SpecError:
    """The error with file names relative to the zip (no server paths in answers)."""
    prefix = str(root) + "/"
    issues = [
        replace(
            issue,
            file=issue.file.removeprefix(prefix),
            message=issue.message.replace(prefix, ""),
            expected=issue.expected.replace(prefix, ""),
        )
        for issue in error.issues
    ]
    return SpecError(issues)
