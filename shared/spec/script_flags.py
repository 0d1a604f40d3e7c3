"""What the entry script of a parallel job sees of Fanout's runtime in ``sys.argv``.

Azure ML starts the entry script's process with its own runtime flags (``--logging_level``,
``--mini_batch_size`` ...) followed by the user's arguments, and keeps the flags it does not know in
``sys.argv``, so a script may read the job's logging level with ``parse_known_args`` (reference §9.20).
Fanout does the same at freeze time: :func:`script_flags` gives the flags that
:mod:`shared.spec.parallel` appends to ``ParallelSettings.program_arguments``. Decisions:

- The flags are those of Azure ML v1's ``ParallelRunStep`` that describe the job's settings:
  ``--logging_level``, ``--mini_batch_size`` (when the plan has one: files, or bytes for tabular
  inputs), ``--error_threshold``, ``--run_invocation_timeout`` (``retry_settings.timeout``) and
  ``--run_max_try`` (``1 + retry_settings.max_retries``). Driver internals (``--scoring_module_name``,
  ``--client_sdk_version``, ``--output_action``, ``--output``) are not passed.
- They come *after* the user's arguments (Azure ML puts them first): a script that reads a positional
  first argument still gets the user's value, not Fanout's.
- A flag the user wrote in ``program_arguments`` wins: Fanout does not add its own copy.

:data:`RESERVED_FLAGS` are Azure ML runtime names that Fanout does not read from ``program_arguments``
(v1 rejected them there; Fanout's settings live in the job's keys). Written in ``program_arguments``
they would silently have no effect, so ``fanout validate`` warns at the token and says what to write
instead; the token still reaches the script unchanged.
"""

from __future__ import annotations

from shared.plan import ParallelSettings

#: Azure ML runtime names Fanout does not read from program_arguments -> what to write instead.
RESERVED_FLAGS: dict[str, str] = {
    "--mini_batch_size": "mini_batch_size: at the job level",
    "--partition_keys": "partition_keys: at the job level",
    "--logging_level": "logging_level: at the job level",
    "--run_invocation_timeout": "retry_settings: {timeout: <seconds>} at the job level",
    "--run_max_try": "retry_settings: {max_retries: <tries - 1>} at the job level",
    "--process_count_per_node": "max_concurrency_per_instance: at the job level",
    "--node_count": "resources: {instance_count: <nodes>} at the job level",
    "--allowed_failed_count": "mini_batch_error_threshold: at the job level",
    "--output": "append_row_to: ${{outputs.<name>}} in the task",
    "--output_action": "append_row_to: ${{outputs.<name>}} in the task (append_row), or no append_row_to",
}


def script_flags(settings: ParallelSettings) -> list[str]:
    """Fanout's runtime flags for the entry script, as argv tokens, in a fixed order."""
    flags = ["--logging_level", settings.logging_level]
    if settings.mini_batch_size is not None:
        flags += ["--mini_batch_size", str(settings.mini_batch_size)]
    flags += ["--error_threshold", str(settings.error_threshold)]
    flags += ["--run_invocation_timeout", str(settings.retry.timeout)]
    flags += ["--run_max_try", str(1 + settings.retry.max_retries)]
    return flags


def with_script_flags(settings: ParallelSettings) -> ParallelSettings:
    """``settings`` whose ``program_arguments`` end with the runtime flags the user did not write."""
    written = {token.partition("=")[0] for token in settings.program_arguments if token.startswith("--")}
    flags = script_flags(settings)
    added: list[str] = []
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        if flag not in written:
            added += [flag, value]
    return settings.model_copy(update={"program_arguments": [*settings.program_arguments, *added]})
