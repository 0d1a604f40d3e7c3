from __future__ import annotations

from shared.errors import ApiError, FanoutError, NotFoundError, SpecError, SpecIssue


def test_spec_error_reports_every_issue_located() -> None:
    issues = [
        SpecIssue(
            "p.yml", 3, 5, "jobs.a.mini_batch_size", "'10 kb' is not a size", "digits + kb/mb/gb (10kb)"
        ),
        SpecIssue("p.yml", 9, 1, "jobs.b", "unknown key 'compte'", "did you mean 'compute'?"),
        SpecIssue("p.yml", 1, 1, "", "a warning", severity="warning"),
    ]
    error = SpecError(issues)
    assert str(error).splitlines() == [
        "2 errors in the spec:",
        "p.yml:3:5: jobs.a.mini_batch_size: '10 kb' is not a size; expected digits + kb/mb/gb (10kb)",
        "p.yml:9:1: jobs.b: unknown key 'compte'; expected did you mean 'compute'?",
    ]
    assert [i["line"] for i in error.to_dict()["issues"]] == [3, 9, 1]


def test_errors_carry_structured_context() -> None:
    error = FanoutError("mini-batch failed", run_id="r1", job="score", mini_batch=7, unused=None)
    assert error.to_dict() == {
        "error": "FanoutError",
        "message": "mini-batch failed",
        "run_id": "r1",
        "job": "score",
        "mini_batch": 7,
    }


def test_not_found_is_an_api_error_with_404() -> None:
    error = NotFoundError("no run r9", run_id="r9")
    assert isinstance(error, ApiError)
    assert error.status == 404
