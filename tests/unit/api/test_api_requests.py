"""Parsing of submissions, log paths, paging tokens and the ETA: pure logic behind the handlers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared.api.http import ApiRequest
from shared.api.logs import split_log_path
from shared.api.pipelines import parse_submit_request
from shared.api.runs import _decode_token, _encode_token, _parse_status, estimate_seconds_left
from shared.errors import ApiError
from shared.orchestration.contracts import RunStatus, StepProgress, StepRef
from shared.orchestration.run_index import RunIndexEntry, ordered_key

SPEC = "type: pipeline\njobs: {}\n"


def _post(body: bytes, content_type: str | None) -> ApiRequest:
    headers = {"Content-Type": content_type} if content_type else {}
    return ApiRequest.build("POST", "http://127.0.0.1:7071/api/pipelines", headers=headers, body=body)


@pytest.mark.parametrize("content_type", ["application/yaml", "text/yaml; charset=utf-8", "text/plain", None])
def test_yaml_bodies_are_the_spec(content_type: str | None) -> None:
    parsed = parse_submit_request(_post(SPEC.encode(), content_type))
    assert parsed.spec_text == SPEC
    assert parsed.overrides == {}
    assert parsed.snapshot is None


def test_json_body_with_text_or_object_spec() -> None:
    parsed = parse_submit_request(
        _post(
            json.dumps({"spec": SPEC, "overrides": {"inputs.x": "2"}, "source": "p.yml"}).encode(),
            "application/json",
        )
    )
    assert (parsed.spec_text, parsed.overrides, parsed.source) == (SPEC, {"inputs.x": "2"}, "p.yml")
    parsed = parse_submit_request(
        _post(json.dumps({"spec": {"type": "pipeline"}}).encode(), "application/json")
    )
    assert json.loads(parsed.spec_text) == {"type": "pipeline"}


def test_multipart_with_snapshot_and_overrides() -> None:
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"set": ["inputs.a=1", "inputs.b=c=d"], "overrides": '{"inputs.z": 3}'},
        files={"spec": ("my pipeline.yml", SPEC.encode()), "snapshot": ("code.zip", b"PK-zip")},
    )
    parsed = parse_submit_request(_post(request.read(), request.headers["content-type"]))
    assert parsed.spec_text == SPEC
    assert parsed.source == "my pipeline.yml"
    assert parsed.overrides == {"inputs.z": "3", "inputs.a": "1", "inputs.b": "c=d"}
    assert (parsed.snapshot, parsed.snapshot_name) == (b"PK-zip", "code.zip")


@pytest.mark.parametrize(
    ("body", "content_type", "message", "status"),
    [
        (b"", "application/yaml", "the request body is empty", 400),
        (b"{", "application/json", "malformed at line 1, column 2", 400),
        (b'{"overrides": {}}', "application/json", "spec: Field required", 400),
        (b'{"spec": "x", "extra": 1}', "application/json", "extra: Extra inputs are not permitted", 400),
        (
            b'{"spec": "x", "overrides": {"a": 1}}',
            "application/json",
            r"overrides\.a: Input should be a valid string",
            400,
        ),
        (b"\xff\xfe", "application/yaml", "not UTF-8", 400),
        (b"<xml/>", "application/xml", "unsupported Content-Type 'application/xml'", 415),
    ],
)
def test_malformed_submissions(body: bytes, content_type: str, message: str, status: int) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        parse_submit_request(_post(body, content_type))
    assert caught.value.status == status


def _form(**kwargs: object) -> ApiRequest:
    request = httpx.Request("POST", "http://x/", **kwargs)  # type: ignore[arg-type]
    return _post(request.read(), request.headers["content-type"])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([("set", "a=1")], "the form has no 'spec' field"),
        ([("spec", SPEC), ("colour", "red")], "unknown form field colour"),
        ([("spec", SPEC), ("set", "novalue")], "'set' must be 'path=value'"),
        ([("spec", SPEC), ("overrides", "[1]")], "must be a JSON object"),
        ([("spec", SPEC), ("overrides", "{")], "'overrides' is not JSON"),
        ([("spec", SPEC), ("spec", SPEC)], "'spec' was sent more than once"),
    ],
)
def test_malformed_forms(fields: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ApiError, match=message):
        parse_submit_request(_form(files=[(name, (None, value)) for name, value in fields]))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", (None, "")),
        ("/", (None, "")),
        ("score", ("score", "")),
        ("score/", ("score", "")),
        ("score/job_result.txt", ("score", "job_result.txt")),
        ("score/user/stdout/0/process000.stdout.txt", ("score", "user/stdout/0/process000.stdout.txt")),
        ("score/a b%2e.txt", ("score", "a b%2e.txt")),
    ],
)
def test_log_paths_split_into_job_and_file(path: str, expected: tuple[str | None, str]) -> None:
    assert split_log_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "../other-run/x",
        "score/../../x",
        "score/./x",
        "score//x",
        "/score/x",
        "score\\..\\x",
        "score/a\x00b",
        "..",
    ],
)
def test_traversal_in_log_paths_is_refused(path: str) -> None:
    with pytest.raises(ApiError, match=r"is not allowed|must be relative") as caught:
        split_log_path(path)
    assert caught.value.status == 400


def _entry(run_id: str, created: datetime) -> RunIndexEntry:
    return RunIndexEntry(run_id=run_id, status=RunStatus.RUNNING, created_at=created, updated_at=created)


def test_paging_tokens_round_trip_and_reject_junk() -> None:
    key = ordered_key(_entry("run-1", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
    token = _encode_token(key)
    assert _decode_token(token) == key
    for junk in ["not-base64!", "e30", "WzEsMl0", token[:-3], _encode_token("run-1' or 1 eq 1")]:
        with pytest.raises(ApiError, match="continuation_token"):
            _decode_token(junk)


def test_status_filter_is_case_insensitive_and_checked() -> None:
    assert _parse_status("running") is RunStatus.RUNNING
    with pytest.raises(ApiError, match="unknown run status 'Sleeping'; expected one of Queued"):
        _parse_status("Sleeping")


def test_eta_from_the_pace_so_far() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = StepRef(run_id="r", job="j")
    progress = StepProgress(
        step=step,
        total_mini_batches=100,
        dispatched=True,
        succeeded_mini_batches=20,
        failed_mini_batches=5,
        first_activity_at=start,
    )
    assert estimate_seconds_left(progress, now=start + timedelta(seconds=50)) == 150.0
    assert estimate_seconds_left(progress, now=start) is None  # no time has passed yet
    done = progress.model_copy(update={"succeeded_mini_batches": 95})
    assert estimate_seconds_left(done, now=start + timedelta(seconds=10)) == 0.0
    assert estimate_seconds_left(StepProgress(step=step), now=start) is None
