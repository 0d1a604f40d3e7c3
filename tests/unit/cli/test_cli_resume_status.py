"""`fanout status RUN` says which run a run resumes (and which run resumed it) and what was carried."""

from __future__ import annotations

from shared.cli.status import format_run


def test_status_shows_the_resume_chain_and_the_carried_mini_batches() -> None:
    detail = {
        "run_id": "resume-a-1",
        "status": "Running",
        "resumed_from": "a",
        "resumed_by": "resume-a-2",
        "jobs": [
            {
                "name": "score",
                "type": "parallel",
                "status": "Running",
                "mini_batches_total": 8,
                "mini_batches_succeeded": 7,
                "mini_batches_failed": 0,
                "mini_batches_carried": 6,
                "items_succeeded": 7,
                "items_failed": 1,
            }
        ],
    }
    lines = format_run(detail).splitlines()
    assert lines[1] == "  resumes run a (its finished work is kept)"
    assert lines[2] == "  resumed by run resume-a-2"
    assert lines[3].endswith("items 7 ok, 1 failed; 6 mini-batches carried over")
    plain = format_run({**detail, "resumed_from": None, "resumed_by": None})
    assert "resumes run" not in plain
    assert "resumed by" not in plain
    assert "carried" in plain
