"""What the entry script sees of Fanout's runtime (§9.20), and reserved names in program_arguments (§9.21)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from shared.cli.main import cli

from .conftest import SpecWriter
from .test_parallel import DEFAULT_SCRIPT_FLAGS, parallel_spec, settings_of


def test_the_job_settings_reach_the_script_as_runtime_flags(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(
        write_spec,
        job_extra=(
            "logging_level: debug\n"
            'mini_batch_size: "2kb"\n'
            "error_threshold: 4\n"
            "retry_settings: {max_retries: 0, timeout: 15}\n"
        ),
        task_extra="program_arguments: --model m\n",
    )
    assert warnings == []
    assert settings.program_arguments == [
        "--model", "m",
        "--logging_level", "DEBUG", "--mini_batch_size", "2048", "--error_threshold", "4",
        "--run_invocation_timeout", "15", "--run_max_try", "1",
    ]  # fmt: skip


def test_partition_keys_leave_out_mini_batch_size(write_spec: SpecWriter) -> None:
    settings, _ = settings_of(write_spec, job_extra="partition_keys: [a]\n")
    assert settings.program_arguments == DEFAULT_SCRIPT_FLAGS
    assert "--mini_batch_size" not in settings.program_arguments


def test_a_flag_the_user_wrote_wins_and_warns_that_the_job_ignores_it(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(
        write_spec, task_extra="program_arguments: --logging_level=WARNING --run_max_try 9\n"
    )
    # The job's own settings are unchanged; the script sees the user's values, and no second copy.
    assert settings.logging_level == "INFO"
    assert settings.retry.max_retries == 2
    assert settings.program_arguments == [
        "--logging_level=WARNING", "--run_max_try", "9",
        "--error_threshold", "-1", "--run_invocation_timeout", "60",
    ]  # fmt: skip
    assert [w.split(": ", 2)[2] for w in warnings] == [
        "--logging_level in program_arguments has no effect on the job: Fanout does not read it there "
        "(the entry script still receives it); expected logging_level: at the job level",
        "--run_max_try in program_arguments has no effect on the job: Fanout does not read it there "
        "(the entry script still receives it); expected retry_settings: {max_retries: <tries - 1>} at "
        "the job level",
    ]


@pytest.mark.parametrize(
    ("flag", "instead"),
    [
        ("--mini_batch_size", "mini_batch_size: at the job level"),
        ("--partition_keys", "partition_keys: at the job level"),
        ("--process_count_per_node", "max_concurrency_per_instance: at the job level"),
        ("--run_invocation_timeout", "retry_settings: {timeout: <seconds>} at the job level"),
        ("--allowed_failed_count", "mini_batch_error_threshold: at the job level"),
        ("--output", "append_row_to: ${{outputs.<name>}} in the task"),
    ],
)
def test_reserved_names_warn_at_their_token_with_what_to_write(
    write_spec: SpecWriter, flag: str, instead: str
) -> None:
    settings, warnings = settings_of(write_spec, task_extra=f"program_arguments: --model m {flag} 5\n")
    assert len(warnings) == 1
    # Line 17 is the program_arguments line; the flag starts after "program_arguments: --model m ".
    assert warnings[0].endswith(
        f":17:36: jobs.score.task.program_arguments: {flag} in program_arguments has no effect on the "
        f"job: Fanout does not read it there (the entry script still receives it); expected {instead}"
    )
    assert settings.program_arguments[:4] == ["--model", "m", flag, "5"]


def test_a_positional_first_argument_warns_and_still_reaches_the_script(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(write_spec, task_extra="program_arguments: model.pkl --rows 3\n")
    assert settings.program_arguments == ["model.pkl", "--rows", "3", *DEFAULT_SCRIPT_FLAGS]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        ":17:26: jobs.score.task.program_arguments: the first argument 'model.pkl' is not a flag: Azure ML "
        "v1 rejected such arguments; Fanout passes it to the entry script as written; expected arguments "
        "that start with a flag: --<name> <value>"
    )


def test_fanout_validate_prints_the_reserved_name_warning(write_spec: SpecWriter) -> None:
    path = write_spec(parallel_spec(task_extra="program_arguments: --mini_batch_size 5\n"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warnings (1):" in result.stdout
    assert (
        f"{path}:17:26: jobs.score.task.program_arguments: --mini_batch_size in program_arguments has no "
        "effect on the job" in result.stdout
    )
    assert "expected mini_batch_size: at the job level" in result.stdout
