"""Parallel jobs: runtime flags, thresholds, bindings into run settings, and the documented decisions."""

from __future__ import annotations

import textwrap

import pytest

from shared.plan import AppendRowFormat, ParallelSettings

from .conftest import SpecWriter, compile_ok, one_error


def parallel_spec(
    job_extra: str = "", task_extra: str = "", inputs_extra: str = "", pipeline_inputs: str = ""
) -> str:
    """A valid pipeline with one parallel job; the extras are YAML lines at the job / task / inputs level."""
    return (
        "type: pipeline\n"
        + (f"inputs:\n{textwrap.indent(textwrap.dedent(pipeline_inputs), '  ')}" if pipeline_inputs else "")
        + "jobs:\n"
        "  score:\n"
        "    type: parallel\n"
        "    inputs:\n"
        "      data:\n"
        "        type: uri_folder\n"
        "        path: ./data/files\n"
        + textwrap.indent(textwrap.dedent(inputs_extra), "      ")
        + "    outputs:\n"
        "      result:\n"
        "        type: uri_file\n"
        "    input_data: ${{inputs.data}}\n"
        + textwrap.indent(textwrap.dedent(job_extra), "    ")
        + "    task:\n"
        "      code: ./src\n"
        "      entry_script: score.py\n"
        "      append_row_to: ${{outputs.result}}\n" + textwrap.indent(textwrap.dedent(task_extra), "      ")
    )


#: What Fanout appends to program_arguments for the spec above at its defaults (§9.20).
DEFAULT_SCRIPT_FLAGS = [
    "--logging_level", "INFO", "--error_threshold", "-1", "--run_invocation_timeout", "60",
    "--run_max_try", "3",
]  # fmt: skip


def settings_of(write_spec: SpecWriter, **extra: str) -> tuple[ParallelSettings, list[str]]:
    plan = compile_ok(write_spec(parallel_spec(**extra)))
    settings = plan.job("score").parallel
    assert settings is not None
    return settings, plan.warnings


def test_defaults_follow_the_documented_decisions(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(write_spec)
    assert warnings == []
    assert settings.mini_batch_size is None  # 10 files / 1 MiB, decided by the input type
    assert settings.partition_keys is None
    assert settings.retry.max_retries == 2
    assert settings.retry.timeout == 60
    assert settings.error_threshold == -1
    assert settings.mini_batch_error_threshold == -1
    assert settings.allowed_failed_percent == 100
    assert settings.task_overhead_timeout == 600
    assert settings.progress_update_timeout is None
    assert settings.first_task_creation_timeout == 600
    assert settings.resource_monitor_interval == 600
    assert settings.logging_level == "INFO"
    assert settings.instance_count == 1
    assert settings.max_concurrency_per_instance is None
    assert settings.copy_logs_to_parent is False
    assert settings.append_row_format is AppendRowFormat.AZUREML
    assert settings.append_row_file_name == "parallel_run_step.txt"


def test_every_runtime_flag_is_parsed_and_kept(write_spec: SpecWriter) -> None:
    flags = (
        "program_arguments: >-\n"
        "  --error_threshold=7 --allowed_failed_percent 12.5 --task_overhead_timeout 30\n"
        "  --progress_update_timeout 90 --first_task_creation_timeout 100 --copy_logs_to_parent true\n"
        "  --resource_monitor_interval 0 --append_row_dataframe_header True\n"
        "  --append_row_file_name scores.csv --append_row_format jsonl --mine 1\n"
    )
    settings, warnings = settings_of(write_spec, task_extra=flags)
    assert warnings == []
    assert settings.error_threshold == 7
    assert settings.allowed_failed_percent == 12.5
    assert settings.task_overhead_timeout == 30
    assert settings.progress_update_timeout == 90
    assert settings.first_task_creation_timeout == 100
    assert settings.copy_logs_to_parent is True
    assert settings.resource_monitor_interval == 0
    assert settings.append_row_dataframe_header is True
    assert settings.append_row_file_name == "scores.csv"
    assert settings.append_row_format is AppendRowFormat.JSONL
    assert settings.program_arguments[0] == "--error_threshold=7"
    assert settings.program_arguments[-8:] == [
        "--mine", "1",
        # --error_threshold is the user's, so Fanout does not add its own.
        "--logging_level", "INFO", "--run_invocation_timeout", "60", "--run_max_try", "3",
    ]  # fmt: skip
    assert settings.program_arguments.count("--error_threshold=7") == 1
    assert "--error_threshold" not in settings.program_arguments


def test_misspelt_and_ignored_flags_warn_and_reach_the_script(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(
        write_spec,
        task_extra="program_arguments: --error_treshold 3 --metrics_name_prefix run --model_name m\n",
    )
    assert settings.error_threshold == -1
    assert settings.program_arguments == [
        "--error_treshold",
        "3",
        "--metrics_name_prefix",
        "run",
        "--model_name",
        "m",
        *DEFAULT_SCRIPT_FLAGS,
    ]
    assert len(warnings) == 2
    assert "--error_treshold is not a runtime flag (did you mean --error_threshold?)" in warnings[0]
    assert "error_threshold keeps its default (-1)" in warnings[0]
    assert "--metrics_name_prefix is accepted but ignored by Fanout" in warnings[1]


def test_a_flag_given_twice_keeps_the_last_value_with_a_warning(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(
        write_spec, task_extra="program_arguments: --task_overhead_timeout 5 --task_overhead_timeout 9\n"
    )
    assert settings.task_overhead_timeout == 9
    assert len(warnings) == 1
    assert warnings[0].endswith(
        ":17:52: jobs.score.task.program_arguments: --task_overhead_timeout is given twice; "
        "the last value (9) is used"
    )


def test_error_threshold_flag_wins_over_the_attribute(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(
        write_spec, job_extra="error_threshold: 2\n", task_extra="program_arguments: --error_threshold 4\n"
    )
    assert settings.error_threshold == 4
    assert len(warnings) == 1
    assert "error_threshold 2 differs from --error_threshold 4; the flag wins" in warnings[0]
    settings, warnings = settings_of(write_spec, job_extra="error_threshold: 2\n")
    assert (settings.error_threshold, warnings) == (2, [])


def test_partition_keys_win_over_mini_batch_size(write_spec: SpecWriter) -> None:
    settings, warnings = settings_of(
        write_spec, job_extra='mini_batch_size: "10kb"\npartition_keys: [Store, Brand]\n'
    )
    assert settings.partition_keys == ["Store", "Brand"]
    assert settings.mini_batch_size is None
    assert len(warnings) == 1
    assert (
        ":13:5: jobs.score.mini_batch_size: mini_batch_size is ignored because partition_keys is set"
        in warnings[0]
    )


@pytest.mark.parametrize(
    ("value", "keys"), [("Store,Brand", ["Store", "Brand"]), ('\'["Store", "Brand"]\'', ["Store", "Brand"])]
)
def test_partition_keys_bind_to_a_pipeline_input(write_spec: SpecWriter, value: str, keys: list[str]) -> None:
    settings, _ = settings_of(
        write_spec, pipeline_inputs=f"keys: {value}\n", job_extra="partition_keys: ${{parent.inputs.keys}}\n"
    )
    assert settings.partition_keys == keys


def test_run_settings_bind_to_pipeline_and_job_inputs(write_spec: SpecWriter) -> None:
    path = write_spec(
        parallel_spec(
            pipeline_inputs="size: 2mb\nnodes: 3\ntimeout: 45\nlevel: debug\n",
            inputs_extra="retries: 4\n",
            job_extra=(
                "mini_batch_size: ${{parent.inputs.size}}\n"
                "resources:\n  instance_count: ${{parent.inputs.nodes}}\n"
                "retry_settings:\n  max_retries: ${{inputs.retries}}\n"
                "  timeout: ${{ parent.inputs.timeout }}\n"
                "logging_level: ${{parent.inputs.level}}\n"
                "max_concurrency_per_instance: ${{parent.inputs.nodes}}\n"
            ),
        )
    )
    plan = compile_ok(path, overrides={"inputs.nodes": "5"})
    settings = plan.job("score").parallel
    assert settings is not None
    assert settings.mini_batch_size == 2 * 1024 * 1024
    assert settings.instance_count == 5
    assert plan.job("score").instance_count == 5
    assert settings.max_concurrency_per_instance == 5
    assert (settings.retry.max_retries, settings.retry.timeout) == (4, 45)
    assert settings.logging_level == "DEBUG"


def test_a_bound_mini_batch_size_is_checked_like_a_written_one(write_spec: SpecWriter) -> None:
    path = write_spec(
        parallel_spec(pipeline_inputs="size: 10 kb\n", job_extra="mini_batch_size: ${{parent.inputs.size}}\n")
    )
    issue = one_error(path)
    assert (issue.line, issue.column, issue.path) == (15, 22, "jobs.score.mini_batch_size")
    assert issue.message == "${{parent.inputs.size}} = '10 kb': '10 kb' is not a mini_batch_size"
    assert issue.expected == 'no space between the number and the unit: "10kb"'


def test_program_arguments_substitute_literals_and_keep_data_placeholders(write_spec: SpecWriter) -> None:
    settings, _ = settings_of(
        write_spec,
        pipeline_inputs="label: two words\n",
        inputs_extra="rate: 0.5\nflag: true\n",
        task_extra=(
            "program_arguments: >-\n"
            "  --data ${{ inputs.data }} --rate ${{inputs.rate}} --flag ${{inputs.flag}}\n"
            "  --label ${{parent.inputs.label}} --out ${{outputs.result}} --quoted 'a b'\n"
        ),
    )
    assert settings.program_arguments == [
        "--data", "${{inputs.data}}", "--rate", "0.5", "--flag", "True",
        "--label", "two words", "--out", "${{outputs.result}}", "--quoted", "a b",
        *DEFAULT_SCRIPT_FLAGS,
    ]  # fmt: skip


def test_optional_blocks_in_program_arguments(write_spec: SpecWriter) -> None:
    component = """
        type: parallel
        inputs:
          data: {type: uri_folder}
          seed: {type: integer, optional: true}
          depth: {type: integer, optional: true}
        outputs:
          result: {type: uri_file}
        input_data: ${{inputs.data}}
        task:
          code: ../src
          entry_script: score.py
          program_arguments: --a 1 $[[--seed ${{inputs.seed}}]] $[[--depth ${{inputs.depth}}]] --b 2
    """
    path = write_spec(
        """
        type: pipeline
        jobs:
          score:
            type: parallel
            component: ./comp/score.yml
            inputs:
              data: {type: uri_folder, path: ./data/files}
              depth: 3
        """,
        files={"comp/score.yml": component},
    )
    settings = compile_ok(path).job("score").parallel
    assert settings is not None
    assert settings.program_arguments == ["--a", "1", "--depth", "3", "--b", "2", *DEFAULT_SCRIPT_FLAGS]


def test_data_pipeline_input_in_arguments_must_be_bound_first(write_spec: SpecWriter) -> None:
    path = write_spec(
        parallel_spec(
            pipeline_inputs="model:\n  type: uri_folder\n  path: ./src\n",
            task_extra="program_arguments: --model ${{parent.inputs.model}}\n",
        )
    )
    issue = one_error(path)
    assert issue.path == "jobs.score.task.program_arguments"
    assert issue.message == "${{parent.inputs.model}} is data; bind it to a job input first"


def test_older_spellings_are_accepted_with_warnings(write_spec: SpecWriter) -> None:
    path = write_spec(parallel_spec(task_extra="type: function\nargs: --x 1\n"))
    plan = compile_ok(path)
    settings = plan.job("score").parallel
    assert settings is not None
    assert settings.program_arguments == ["--x", "1", *DEFAULT_SCRIPT_FLAGS]
    assert [w.split(": ", 2)[1:] for w in plan.warnings] == [
        ["jobs.score.task.type", "task type 'function' is an older spelling of 'run_function'"],
        ["jobs.score.task.args", "'args' is an older name of 'program_arguments'"],
    ]


def test_ignored_azure_ml_keys_warn(write_spec: SpecWriter) -> None:
    path = write_spec(
        parallel_spec(
            job_extra="identity:\n  type: managed\n"
            "resources:\n  instance_type: Standard_D4\n  instance_count: 2\n"
        )
    )
    plan = compile_ok(path)
    assert plan.job("score").instance_count == 2
    assert len(plan.warnings) == 2
    assert ":13:5: jobs.score.identity: 'identity' is accepted but ignored by Fanout" in plan.warnings[0]
    assert (
        ":16:7: jobs.score.resources.instance_type: 'instance_type' is accepted but ignored"
        in plan.warnings[1]
    )


def test_is_deterministic_false_disables_reuse(write_spec: SpecWriter) -> None:
    plan = compile_ok(write_spec(parallel_spec(job_extra="is_deterministic: false\n")))
    assert plan.job("score").allow_reuse is False
