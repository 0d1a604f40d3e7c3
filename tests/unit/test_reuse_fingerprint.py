"""What the reuse fingerprint sees and what it leaves out (pure: no data inputs, no code, no storage)."""

from __future__ import annotations

from typing import Any

from shared.plan import (
    BlobData,
    CommandSettings,
    EnvironmentPlan,
    JobPlan,
    JobType,
    LiteralInput,
    LiteralType,
    OutputPlan,
    ParallelSettings,
    RunPlan,
)
from shared.reuse import fingerprint_step, result_arguments, reuse_enabled
from shared.storage import output_path

NO_STORAGE: Any = None  # fingerprints of jobs without data inputs or code never touch storage


def parallel_job(run_id: str = "run-1", **changes: Any) -> JobPlan:
    settings = {
        "input_data": "table",
        "entry_script": "score.py",
        "program_arguments": ["--model", "m1", "--logging_level", "INFO"],
        "mini_batch_size": 10,
        **changes.pop("parallel", {}),
    }
    job = {
        "name": "score",
        "type": JobType.PARALLEL,
        "parallel": ParallelSettings(**settings),
        "outputs": {
            "scores": OutputPlan(
                location=BlobData(container="runs", path=output_path(run_id, "score", "scores"))
            )
        },
        **changes,
    }
    return JobPlan(**job)


def fp(job: JobPlan, run_id: str = "run-1", inputs: dict[str, Any] | None = None, **plan: Any) -> str:
    the_plan = RunPlan(run_id=run_id, jobs=[job], **plan)
    literal = {"threshold": LiteralInput(type=LiteralType.NUMBER, value=0.5)}
    return fingerprint_step(NO_STORAGE, the_plan, job, literal if inputs is None else inputs)


def test_an_unchanged_job_in_another_run_has_the_same_fingerprint() -> None:
    first = fp(parallel_job("run-1"), "run-1")
    assert first.startswith("fp1-")
    assert fp(parallel_job("run-2"), "run-2") == first


def test_settings_that_do_not_change_results_are_left_out() -> None:
    base = fp(parallel_job())
    same = [
        parallel_job(name="renamed", display_name="Nice", compute="gpu-cluster", instance_count=4),
        parallel_job(
            parallel={
                "instance_count": 8,
                "max_concurrency_per_instance": 3,
                "logging_level": "DEBUG",
                "task_overhead_timeout": 30,
                "progress_update_timeout": 99,
                "first_task_creation_timeout": 77,
                "resource_monitor_interval": 0,
                "copy_logs_to_parent": True,
                "program_arguments": [
                    "--model",
                    "m1",
                    "--logging_level=DEBUG",
                    "--resource_monitor_interval",
                    "0",
                ],
            }
        ),
        parallel_job(allow_reuse=False, depends_on=["prep"]),
        parallel_job(
            outputs={
                "scores": OutputPlan(
                    location=BlobData(container="runs", path=output_path("run-1", "score", "scores")),
                    asset_name="scores",
                    asset_version="7",
                )
            }
        ),
    ]
    assert [fp(job) for job in same] == [base] * len(same)


def test_everything_that_changes_results_changes_the_fingerprint() -> None:
    variants = {
        "base": parallel_job(),
        "entry script": parallel_job(parallel={"entry_script": "other.py"}),
        "argument": parallel_job(parallel={"program_arguments": ["--model", "m2"]}),
        "mini_batch_size": parallel_job(parallel={"mini_batch_size": 11}),
        "partition_keys": parallel_job(parallel={"partition_keys": ["region"]}),
        "error threshold": parallel_job(parallel={"error_threshold": 5}),
        "append_row_to": parallel_job(parallel={"append_row_to": "scores"}),
        "environment": parallel_job(environment=EnvironmentPlan(image="python:3.12")),
        "environment variable": parallel_job(environment_variables={"SEED": "1"}),
        "output path": parallel_job(
            outputs={"scores": OutputPlan(location=BlobData(container="data", path="fixed/scores"))}
        ),
        "output name": parallel_job(
            outputs={
                "other": OutputPlan(
                    location=BlobData(container="runs", path=output_path("run-1", "score", "other"))
                )
            }
        ),
    }
    prints = {name: fp(job) for name, job in variants.items()}
    assert len(set(prints.values())) == len(variants), prints


def test_parameter_values_are_part_of_the_fingerprint() -> None:
    job = parallel_job()

    def with_value(kind: LiteralType, value: str | float | bool) -> str:
        return fp(job, inputs={"threshold": LiteralInput(type=kind, value=value)})

    assert with_value(LiteralType.NUMBER, 0.5) != with_value(LiteralType.NUMBER, 0.6)
    assert with_value(LiteralType.NUMBER, 1) == with_value(LiteralType.NUMBER, 1.0)
    assert with_value(LiteralType.STRING, "1") != with_value(LiteralType.INTEGER, 1)
    assert with_value(LiteralType.BOOLEAN, True) != with_value(LiteralType.BOOLEAN, False)
    assert fp(job, inputs={}) != fp(job)  # an input added or removed
    renamed = {"limit": LiteralInput(type=LiteralType.NUMBER, value=0.5)}
    assert fp(job, inputs=renamed) != fp(job)  # input names count, as in Azure ML


def test_command_jobs_ignore_their_timeout_but_not_their_command() -> None:
    def command(text: str, timeout: int | None) -> JobPlan:
        return JobPlan(
            name="train", type=JobType.COMMAND, command=CommandSettings(command=text, timeout=timeout)
        )

    assert fp(command("python train.py", 60)) == fp(command("python train.py", None))
    assert fp(command("python train.py", 60)) != fp(command("python train.py --epochs 2", 60))


def test_result_arguments_drop_runtime_flags_and_their_values() -> None:
    arguments = [
        "--model",
        "${{inputs.model}}",
        "--logging_level",
        "DEBUG",
        "--x=1",
        "--copy_logs_to_parent=True",
    ]
    assert result_arguments(arguments) == ["--model", "${{inputs.model}}", "--x=1"]
    assert result_arguments(["--error_threshold", "5"]) == ["--error_threshold", "5"]


def test_reuse_is_enabled_unless_forced_or_non_deterministic() -> None:
    job = parallel_job()
    plan = RunPlan(run_id="r", jobs=[job])
    assert reuse_enabled(plan, job)
    assert not reuse_enabled(plan, job, force_rerun=True)
    assert not reuse_enabled(plan.model_copy(update={"force_rerun": True}), job)
    assert not reuse_enabled(plan, job.model_copy(update={"allow_reuse": False}))
