"""The corpus of malformed specs: each spec, the files it needs, its --set pairs, and the one error it
must produce — (file, line, column, json path, message, expected). ``{dir}`` stands for the folder the
spec is written to. Most specs are one edit of the small valid parallel pipeline ``P``.
"""

# ruff: noqa: E501

from __future__ import annotations

P = """type: pipeline
jobs:
  score:
    type: parallel
    inputs:
      data:
        type: uri_folder
        path: ./data/files
    outputs:
      result:
        type: uri_file
    input_data: ${{inputs.data}}
    task:
      code: ./src
      entry_script: score.py
      append_row_to: ${{outputs.result}}
"""


def with_(extra: str, after: str = "    input_data: ${{inputs.data}}\n", base: str = P) -> str:
    assert after in base
    return base.replace(after, after + extra)


def replace(old: str, new: str, base: str = P) -> str:
    assert old in base, old
    return base.replace(old, new)


CMD = """type: pipeline
jobs:
  train:
    type: command
    inputs:
      epochs: 3
    outputs:
      model:
    code: ./src
    command: python train.py --epochs ${{inputs.epochs}} --out ${{outputs.model}}
"""
COMPONENT = """type: pipeline
inputs:
  n: 3
jobs:
  score:
    type: parallel
    component: ./comp/score.yml
    inputs:
      data:
        type: uri_folder
        path: ./data/files
"""
COMPONENT_FILE = """$schema: https://azuremlschemas.azureedge.net/latest/parallelComponent.schema.json
type: parallel
inputs:
  data:
    type: uri_folder
  n:
    type: integer
    default: 2
outputs:
  result:
    type: uri_file
input_data: ${{inputs.data}}
task:
  code: ../src
  entry_script: score.py
  append_row_to: ${{outputs.result}}
"""
CF = {"comp/score.yml": COMPONENT_FILE}
TWO = """type: pipeline
jobs:
  a:
    type: command
    inputs:
      x: ${{parent.jobs.b.outputs.out}}
    outputs:
      out:
    command: echo ${{inputs.x}} > ${{outputs.out}}/x
  b:
    type: command
    inputs:
      y: ${{parent.jobs.a.outputs.out}}
    outputs:
      out:
    command: echo ${{inputs.y}} > ${{outputs.out}}/y
"""

BOMB = (
    "type: pipeline\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
    + "".join(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]\n" for i in range(1, 7))
    + "jobs: {}\n"
)

CASES = {
    "invalid_yaml": ("type: pipeline\njobs:\n  score: {type: parallel\n", {}, {}),
    "duplicate_key": ("type: pipeline\ntype: pipeline\njobs: {}\n", {}, {}),
    "top_level_list": ("- type: pipeline\n", {}, {}),
    "not_a_pipeline_type": (replace("type: pipeline\n", "type: pipelne\n"), {}, {}),
    "missing_jobs": ("type: pipeline\ndisplay_name: x\n", {}, {}),
    "unknown_top_level_key": (replace("jobs:\n", "job:\n"), {}, {}),
    "empty_jobs": ("type: pipeline\njobs: {}\n", {}, {}),
    "job_not_a_mapping": ("type: pipeline\njobs:\n  score: 3\n", {}, {}),
    "job_without_type": (replace("    type: parallel\n", ""), {}, {}),
    "unsupported_job_type": (replace("    type: parallel\n", "    type: sweep\n"), {}, {}),
    "unknown_job_key": (with_("    compte: azureml:cpu\n"), {}, {}),
    "invalid_job_name": (replace("  score:\n", "  score-1:\n"), {}, {}),
    "non_string_job_key": (replace("  score:\n", "  1:\n"), {}, {}),
    "mini_batch_size_with_space": (with_('    mini_batch_size: "10 kb"\n'), {}, {}),
    "mini_batch_size_without_b": (with_('    mini_batch_size: "10k"\n'), {}, {}),
    "mini_batch_size_decimal": (with_('    mini_batch_size: "1.5mb"\n'), {}, {}),
    "mini_batch_size_unit": (with_('    mini_batch_size: "10tb"\n'), {}, {}),
    "mini_batch_size_zero": (with_("    mini_batch_size: 0\n"), {}, {}),
    "mini_batch_size_two_units": (with_('    mini_batch_size: "10kbmb"\n'), {}, {}),
    "mini_batch_size_negative": (with_('    mini_batch_size: "-1"\n'), {}, {}),
    "retry_timeout_zero": (with_("    retry_settings:\n      timeout: 0\n"), {}, {}),
    "retry_timeout_too_long": (with_("    retry_settings:\n      timeout: 300000\n"), {}, {}),
    "retry_max_retries_text": (with_("    retry_settings:\n      max_retries: two\n"), {}, {}),
    "retry_unknown_key": (with_("    retry_settings:\n      max_retry: 3\n"), {}, {}),
    "instance_count_zero": (with_("    resources:\n      instance_count: 0\n"), {}, {}),
    "logging_level_unknown": (with_("    logging_level: VERBOSE\n"), {}, {}),
    "threshold_below_minus_one": (with_("    mini_batch_error_threshold: -2\n"), {}, {}),
    "input_data_unknown_input": (
        replace("    input_data: ${{inputs.data}}\n", "    input_data: ${{inputs.dta}}\n"),
        {},
        {},
    ),
    "input_data_is_literal": (
        replace(
            "      data:\n        type: uri_folder\n        path: ./data/files\n",
            "      data:\n        type: uri_folder\n        path: ./data/files\n      rate: 0.5\n",
        ).replace("${{inputs.data}}", "${{inputs.rate}}"),
        {},
        {},
    ),
    "input_data_not_a_binding": (
        replace("    input_data: ${{inputs.data}}\n", "    input_data: data\n"),
        {},
        {},
    ),
    "append_row_to_unknown_output": (replace("${{outputs.result}}", "${{outputs.results}}"), {}, {}),
    "arguments_unknown_input": (
        with_("      program_arguments: --model ${{inputs.model}}\n", "      entry_script: score.py\n"),
        {},
        {},
    ),
    "arguments_flag_not_integer": (
        with_(
            "      program_arguments: >-\n        --error_threshold five\n", "      entry_script: score.py\n"
        ),
        {},
        {},
    ),
    "arguments_percent_out_of_range": (
        with_("      program_arguments: --allowed_failed_percent 130\n", "      entry_script: score.py\n"),
        {},
        {},
    ),
    "arguments_flag_without_value": (
        with_("      program_arguments: --task_overhead_timeout\n", "      entry_script: score.py\n"),
        {},
        {},
    ),
    "arguments_unclosed_quote": (
        with_("      program_arguments: --name 'abc\n", "      entry_script: score.py\n"),
        {},
        {},
    ),
    "unknown_expression": (
        with_("      program_arguments: --x ${{parent.foo.x}}\n", "      entry_script: score.py\n"),
        {},
        {},
    ),
    "unknown_pipeline_input": (
        replace(
            "      data:\n        type: uri_folder\n        path: ./data/files\n",
            "      data: ${{parent.inputs.nope}}\n",
        ),
        {},
        {},
    ),
    "unknown_upstream_job": (
        replace(
            "      data:\n        type: uri_folder\n        path: ./data/files\n",
            "      data: ${{parent.jobs.prep.outputs.out}}\n",
        ),
        {},
        {},
    ),
    "unknown_upstream_output": (
        TWO.replace("${{parent.jobs.a.outputs.out}}", "${{parent.jobs.a.outputs.model}}").replace(
            "      x: ${{parent.jobs.b.outputs.out}}\n", "      x: 1\n"
        ),
        {},
        {},
    ),
    "cycle": (TWO, {}, {}),
    "local_path_missing": (replace("./data/files", "./data/missing"), {}, {}),
    "uri_file_is_a_folder": (
        replace(
            "        type: uri_folder\n        path: ./data/files",
            "        type: uri_file\n        path: ./data/files",
        ),
        {},
        {},
    ),
    "mltable_without_mltable_file": (
        replace(
            "        type: uri_folder\n        path: ./data/files",
            "        type: mltable\n        path: ./data/files",
        ),
        {},
        {},
    ),
    "input_mode_invalid": (
        replace("        path: ./data/files\n", "        path: ./data/files\n        mode: readonly\n"),
        {},
        {},
    ),
    "output_mode_invalid": (
        replace("        type: uri_file\n", "        type: uri_file\n        mode: download\n"),
        {},
        {},
    ),
    "input_type_invalid": (replace("        type: uri_folder\n", "        type: uri_fold\n"), {}, {}),
    "datastore_not_a_container_name": (
        replace("./data/files", "azureml://datastores/my_store/paths/x"),
        {},
        {},
    ),
    "plain_http_url": (replace("./data/files", "http://example.blob.core.windows.net/c/x"), {}, {}),
    "asset_without_version": (replace("./data/files", "azureml:iris"), {}, {}),
    "code_folder_missing": (replace("      code: ./src\n", "      code: ./source\n"), {}, {}),
    "entry_script_not_in_code": (replace("score.py", "scorer.py"), {}, {}),
    "entry_script_outside_code": (replace("entry_script: score.py", "entry_script: ../score.py"), {}, {}),
    "task_missing": (P.split("    task:\n", maxsplit=1)[0], {}, {}),
    "component_file_missing": (COMPONENT, {}, {}),
    "error_inside_component_file": (
        COMPONENT,
        {"comp/score.yml": COMPONENT_FILE.replace("input_data:", "inputs_data:")},
        {},
    ),
    "component_type_mismatch": (COMPONENT.replace("    type: parallel\n", "    type: command\n"), CF, {}),
    "task_on_a_component_job": (COMPONENT + "    task:\n      code: ./src\n", CF, {}),
    "unknown_component_input": (COMPONENT + "      model: ${{parent.inputs.n}}\n", CF, {}),
    "required_component_input_unbound": (
        COMPONENT.replace(
            "    inputs:\n      data:\n        type: uri_folder\n        path: ./data/files\n", ""
        ),
        CF,
        {},
    ),
    "literal_for_component_data_input": (
        COMPONENT.replace(
            "      data:\n        type: uri_folder\n        path: ./data/files\n",
            "      data: ${{parent.inputs.n}}\n",
        ),
        CF,
        {},
    ),
    "type_mismatch_string_for_integer": (
        COMPONENT.replace("  n: 3\n", "  n: three\n") + "      n: ${{parent.inputs.n}}\n",
        CF,
        {},
    ),
    "type_mismatch_file_for_folder": (
        COMPONENT.replace(
            "  n: 3\n", "  n: 3\n  one:\n    type: uri_file\n    path: ./data/one.csv\n"
        ).replace(
            "      data:\n        type: uri_folder\n        path: ./data/files\n",
            "      data: ${{parent.inputs.one}}\n",
        ),
        CF,
        {},
    ),
    "pipeline_output_unbound": (
        replace("jobs:\n", "outputs:\n  final:\n    type: uri_file\njobs:\n"),
        {},
        {},
    ),
    "pipeline_output_unknown": (
        replace("      result:\n        type: uri_file\n", "      result: ${{parent.outputs.final}}\n"),
        {},
        {},
    ),
    "output_path_not_a_datastore": (
        replace("        type: uri_file\n", "        type: uri_file\n        path: ./out.csv\n"),
        {},
        {},
    ),
    "output_path_bad_expression": (
        replace(
            "        type: uri_file\n",
            "        type: uri_file\n        path: azureml://datastores/workspaceblobstore/paths/${{inputs.data}}/r.csv\n",
        ),
        {},
        {},
    ),
    "environment_reference_malformed": (
        with_("      environment: my-env\n", "      entry_script: score.py\n"),
        {},
        {},
    ),
    "conda_file_missing": (
        with_(
            "      environment:\n        image: python:3.11\n        conda_file: ./env/missing.yml\n",
            "      entry_script: score.py\n",
        ),
        {},
        {},
    ),
    "command_missing": (
        CMD.replace(
            "    command: python train.py --epochs ${{inputs.epochs}} --out ${{outputs.model}}\n", ""
        ),
        {},
        {},
    ),
    "command_unknown_output": (CMD.replace("${{outputs.model}}", "${{outputs.models}}"), {}, {}),
    "optional_input_outside_block": (
        CMD.replace(
            "    inputs:\n      epochs: 3\n",
            "    component:\n      type: command\n      inputs:\n        seed:\n          type: integer\n          optional: true\n      outputs:\n        model:\n      command: python train.py --seed ${{inputs.seed}} --out ${{outputs.model}}\n",
        ).replace(
            "    code: ./src\n    command: python train.py --epochs ${{inputs.epochs}} --out ${{outputs.model}}\n",
            "",
        ),
        {},
        {},
    ),
    "set_unknown_input": (replace("jobs:\n", "inputs:\n  rate: 0.5\njobs:\n"), {}, {"inputs.rat": "0.7"}),
    "set_wrong_type": (replace("jobs:\n", "inputs:\n  count: 3\njobs:\n"), {}, {"inputs.count": "three"}),
    "setting_bound_to_data": (
        replace(
            "jobs:\n", "inputs:\n  files:\n    type: uri_folder\n    path: ./data/files\njobs:\n"
        ).replace(
            "    input_data: ${{inputs.data}}\n",
            "    input_data: ${{inputs.data}}\n    resources:\n      instance_count: ${{parent.inputs.files}}\n",
        ),
        {},
        {},
    ),
    "setting_bound_out_of_range": (
        replace("jobs:\n", "inputs:\n  nodes: 2\njobs:\n").replace(
            "    input_data: ${{inputs.data}}\n",
            "    input_data: ${{inputs.data}}\n    resources:\n      instance_count: ${{parent.inputs.nodes}}\n",
        ),
        {},
        {"inputs.nodes": "0"},
    ),
    "partition_keys_empty": (with_("    partition_keys: []\n"), {}, {}),
    "environment_variable_name": (with_("    environment_variables:\n      1BAD: x\n"), {}, {}),
    "tag_value_list": (replace("jobs:\n", "tags:\n  owner: [a, b]\njobs:\n"), {}, {}),
    "additional_includes_unsupported": (
        CMD.replace("    code: ./src\n", "    code: ./src\n    additional_includes:\n      - ../shared\n"),
        {},
        {},
    ),
    "compute_name_invalid": (with_("    compute: azureml:bad name\n"), {}, {}),
    "pipeline_input_without_value": (replace("jobs:\n", "inputs:\n  rate:\njobs:\n"), {}, {}),
    "pipeline_input_binding": (replace("jobs:\n", "inputs:\n  rate: ${{parent.inputs.x}}\njobs:\n"), {}, {}),
    "registered_component": (COMPONENT.replace("./comp/score.yml", "azureml:score:1"), {}, {}),
    "alias_bomb": (BOMB, {}, {}),
}

EXPECTED = {
    "additional_includes_unsupported": (
        "pipeline.yml",
        10,
        5,
        "jobs.train.additional_includes",
        "'additional_includes' is not supported by Fanout",
        "the files in the code folder instead",
    ),
    "alias_bomb": (
        "pipeline.yml",
        1,
        1,
        "",
        "the spec expands to more than 20000 nodes (aliases?)",
        "a smaller spec",
    ),
    "append_row_to_unknown_output": (
        "pipeline.yml",
        16,
        22,
        "jobs.score.task.append_row_to",
        "the job has no output 'results'",
        "did you mean 'result'?",
    ),
    "arguments_flag_not_integer": (
        "pipeline.yml",
        17,
        9,
        "jobs.score.task.program_arguments",
        "--error_threshold 'five' is not valid",
        "an integer ≥ -1",
    ),
    "arguments_flag_without_value": (
        "pipeline.yml",
        16,
        26,
        "jobs.score.task.program_arguments",
        "--task_overhead_timeout needs a value",
        "--task_overhead_timeout <value>",
    ),
    "arguments_percent_out_of_range": (
        "pipeline.yml",
        16,
        26,
        "jobs.score.task.program_arguments",
        "--allowed_failed_percent '130' is not valid",
        "a number in [0, 100]",
    ),
    "arguments_unclosed_quote": (
        "pipeline.yml",
        16,
        26,
        "jobs.score.task.program_arguments",
        "program_arguments cannot be split: No closing quotation",
        "balanced quotes",
    ),
    "arguments_unknown_input": (
        "pipeline.yml",
        16,
        26,
        "jobs.score.task.program_arguments",
        "the job has no input 'model'",
        "one of data",
    ),
    "asset_without_version": (
        "pipeline.yml",
        8,
        15,
        "jobs.score.inputs.data.path",
        "'azureml:iris' is not a data asset reference",
        "azureml:<name>:<version> or azureml:<name>@latest (e.g. azureml:iris:1)",
    ),
    "code_folder_missing": (
        "pipeline.yml",
        14,
        13,
        "jobs.score.task.code",
        "the code folder './source' does not exist (looked for {dir}/source)",
        "an existing folder",
    ),
    "command_missing": (
        "pipeline.yml",
        3,
        3,
        "jobs.train",
        "required key 'command' is missing",
        "command: python train.py ...",
    ),
    "command_unknown_output": (
        "pipeline.yml",
        10,
        14,
        "jobs.train.command",
        "the job has no output 'models'",
        "did you mean 'model'?",
    ),
    "component_file_missing": (
        "pipeline.yml",
        7,
        16,
        "jobs.score.component",
        "the component file './comp/score.yml' does not exist (looked for {dir}/comp/score.yml)",
        "an existing file",
    ),
    "component_type_mismatch": (
        "comp/score.yml",
        2,
        7,
        "type",
        "the job is type command but its component is type 'parallel'",
        "a command component",
    ),
    "compute_name_invalid": (
        "pipeline.yml",
        13,
        14,
        "jobs.score.compute",
        "'azureml:bad name' is not a compute name",
        "azureml:<compute-name> (e.g. azureml:cpu-cluster)",
    ),
    "conda_file_missing": (
        "pipeline.yml",
        18,
        21,
        "jobs.score.task.environment.conda_file",
        "the conda file './env/missing.yml' does not exist (looked for {dir}/env/missing.yml)",
        "an existing file",
    ),
    "cycle": (
        "pipeline.yml",
        3,
        3,
        "jobs.a",
        "the jobs form a cycle: a -> b -> a (each consumes an output of the next)",
        "a graph without cycles",
    ),
    "datastore_not_a_container_name": (
        "pipeline.yml",
        8,
        15,
        "jobs.score.inputs.data.path",
        "datastore 'my_store' maps to a container of the same name, which is not a valid container name",
        "workspaceblobstore, or 3-63 lowercase letters, digits and single hyphens",
    ),
    "duplicate_key": (
        "pipeline.yml",
        2,
        1,
        "",
        'invalid YAML: found duplicate key "type" with value "pipeline" (original value: "pipeline") (while constructing a mapping at line 1, column 1)',
        "well-formed YAML or JSON",
    ),
    "empty_jobs": (
        "pipeline.yml",
        2,
        1,
        "jobs",
        "the pipeline has no jobs",
        "jobs: {<name>: {type: parallel, ...}}",
    ),
    "entry_script_not_in_code": (
        "pipeline.yml",
        15,
        21,
        "jobs.score.task.entry_script",
        "the entry script 'scorer.py' is not in the code folder {dir}/src",
        "a file that exists in the code folder",
    ),
    "entry_script_outside_code": (
        "pipeline.yml",
        15,
        21,
        "jobs.score.task.entry_script",
        "'../score.py' is not a path inside the code folder",
        "e.g. score.py or src/score.py",
    ),
    "environment_reference_malformed": (
        "pipeline.yml",
        16,
        20,
        "jobs.score.task.environment",
        "'my-env' is not an environment reference",
        "azureml:<name>:<version>, azureml:<name>@latest, or an inline mapping with image/conda_file",
    ),
    "environment_variable_name": (
        "pipeline.yml",
        14,
        7,
        "jobs.score.environment_variables.1BAD",
        "'1BAD' is not an environment variable name",
        "letters, digits, underscores",
    ),
    "error_inside_component_file": (
        "comp/score.yml",
        12,
        1,
        "inputs_data",
        "unknown key 'inputs_data'",
        "did you mean 'input_data'?",
    ),
    "input_data_is_literal": (
        "pipeline.yml",
        13,
        17,
        "jobs.score.input_data",
        "input_data must be data, but input 'rate' is the literal 0.5",
        "a uri_folder, uri_file or mltable input",
    ),
    "input_data_not_a_binding": (
        "pipeline.yml",
        12,
        17,
        "jobs.score.input_data",
        "input_data must name one of the job's inputs, got 'data'",
        "${{inputs.<name>}}",
    ),
    "input_data_unknown_input": (
        "pipeline.yml",
        12,
        17,
        "jobs.score.input_data",
        "the job has no input 'dta'",
        "did you mean 'data'?",
    ),
    "input_mode_invalid": (
        "pipeline.yml",
        9,
        15,
        "jobs.score.inputs.data.mode",
        "'readonly' is not an input mode",
        "one of direct, download, eval_download, eval_mount, ro_mount, rw_mount",
    ),
    "input_type_invalid": (
        "pipeline.yml",
        7,
        15,
        "jobs.score.inputs.data.type",
        "'uri_fold' is not an input type",
        "did you mean 'uri_folder'?",
    ),
    "instance_count_zero": (
        "pipeline.yml",
        14,
        23,
        "jobs.score.resources.instance_count",
        "0 is out of range",
        "an integer 1 ≤ n (e.g. 2)",
    ),
    "invalid_job_name": (
        "pipeline.yml",
        3,
        3,
        "jobs.score-1",
        "'score-1' is not a valid job name",
        "letters, digits, underscores",
    ),
    "invalid_yaml": (
        "pipeline.yml",
        4,
        1,
        "",
        "invalid YAML: expected ',' or '}', but got '<stream end>' (while parsing a flow mapping at line 3, column 10)",
        "well-formed YAML or JSON",
    ),
    "job_not_a_mapping": (
        "pipeline.yml",
        3,
        10,
        "jobs.score",
        "expected a job mapping, got the number 3",
        "type: parallel or type: command",
    ),
    "job_without_type": (
        "pipeline.yml",
        3,
        3,
        "jobs.score",
        "job 'score' has no type",
        "type: parallel or type: command",
    ),
    "literal_for_component_data_input": (
        "pipeline.yml",
        9,
        13,
        "jobs.score.inputs.data",
        "input 'data' needs uri_folder data but is given the literal 3",
        "{type: uri_folder, path: ...} or a data binding such as ${{parent.jobs.<job>.outputs.<name>}}",
    ),
    "local_path_missing": (
        "pipeline.yml",
        8,
        15,
        "jobs.score.inputs.data.path",
        "'./data/missing' does not exist (looked for {dir}/data/missing)",
        "an existing file or folder",
    ),
    "logging_level_unknown": (
        "pipeline.yml",
        13,
        20,
        "jobs.score.logging_level",
        "'VERBOSE' is not a logging level",
        "one of INFO, WARNING, DEBUG",
    ),
    "mini_batch_size_decimal": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "'1.5mb' is not a mini_batch_size",
        'a whole number (e.g. "1536kb" instead of "1.5mb")',
    ),
    "mini_batch_size_negative": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "'-1' is not a mini_batch_size",
        'a positive size (e.g. "10")',
    ),
    "mini_batch_size_two_units": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "'10kbmb' has more than one unit",
        'one unit (e.g. "10kb")',
    ),
    "mini_batch_size_unit": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "'10tb' is not a mini_batch_size",
        'the unit kb, mb or gb (e.g. "10gb")',
    ),
    "mini_batch_size_with_space": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "'10 kb' is not a mini_batch_size",
        'no space between the number and the unit: "10kb"',
    ),
    "mini_batch_size_without_b": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "'10k' is not a mini_batch_size",
        'a unit ending in b: "10kb"',
    ),
    "mini_batch_size_zero": (
        "pipeline.yml",
        13,
        22,
        "jobs.score.mini_batch_size",
        "mini_batch_size 0 must be at least 1",
        'a file count (e.g. "10") or digits + kb/mb/gb with no space (e.g. "10kb", "1MB")',
    ),
    "missing_jobs": (
        "pipeline.yml",
        1,
        1,
        "jobs",
        "required key 'jobs' is missing",
        "jobs: {<name>: {type: parallel, ...}}",
    ),
    "mltable_without_mltable_file": (
        "pipeline.yml",
        8,
        15,
        "jobs.score.inputs.data.path",
        "'./data/files' has no MLTable file",
        "a folder containing a file named MLTable",
    ),
    "non_string_job_key": ("pipeline.yml", 3, 3, "jobs.1", "the key '1' is not a string", "string keys"),
    "not_a_pipeline_type": (
        "pipeline.yml",
        1,
        7,
        "type",
        "'pipelne' is not a valid value for 'type'",
        "'pipeline'",
    ),
    "optional_input_outside_block": (
        "pipeline.yml",
        13,
        16,
        "jobs.train.component.command",
        "input 'seed' is optional and has no value",
        "a value for it, or an optional block $[[ ... ${{inputs.seed}} ... ]]",
    ),
    "output_mode_invalid": (
        "pipeline.yml",
        12,
        15,
        "jobs.score.outputs.result.mode",
        "'download' is not an output mode",
        "one of direct, rw_mount, upload",
    ),
    "output_path_bad_expression": (
        "pipeline.yml",
        12,
        15,
        "jobs.score.outputs.result.path",
        "${{inputs.data}} cannot be used in an output path",
        "azureml://datastores/<store>/paths/<path>, with ${{name}}, ${{output_name}}, ${{default_datastore}}, {run-id} or {output-name}",
    ),
    "output_path_not_a_datastore": (
        "pipeline.yml",
        12,
        15,
        "jobs.score.outputs.result.path",
        "an output path must be a datastore URI, got './out.csv'",
        "azureml://datastores/<store>/paths/<path>, with ${{name}}, ${{output_name}}, ${{default_datastore}}, {run-id} or {output-name}",
    ),
    "partition_keys_empty": (
        "pipeline.yml",
        13,
        21,
        "jobs.score.partition_keys",
        "expected a non-empty list of column names, got a list",
        "a list such as [Store, Brand], or a binding ${{parent.inputs.<name>}}",
    ),
    "pipeline_input_binding": (
        "pipeline.yml",
        3,
        9,
        "inputs.rate",
        "a pipeline input cannot be a binding",
        "a literal (e.g. 0.01), {type: integer, default: 3}, or {type: uri_folder, path: ./data}",
    ),
    "pipeline_input_without_value": (
        "pipeline.yml",
        3,
        3,
        "inputs.rate",
        "pipeline input 'rate' has no value",
        "a literal (e.g. 0.01), {type: integer, default: 3}, or {type: uri_folder, path: ./data}",
    ),
    "pipeline_output_unbound": (
        "pipeline.yml",
        3,
        3,
        "outputs.final",
        "pipeline output 'final' is not bound to any job output",
        "outputs: {<name>: ${{parent.outputs.final}}} in one job",
    ),
    "pipeline_output_unknown": (
        "pipeline.yml",
        10,
        15,
        "jobs.score.outputs.result",
        "the pipeline has no output 'final'",
        "a declared name (there are none)",
    ),
    "plain_http_url": (
        "pipeline.yml",
        8,
        15,
        "jobs.score.inputs.data.path",
        "'http://example.blob.core.windows.net/c/x' uses plain http",
        "an https:// URL",
    ),
    "registered_component": (
        "pipeline.yml",
        7,
        16,
        "jobs.score.component",
        "registered components (azureml:score:1) are not available: Fanout has no component registry",
        "a local component file (component: ./component.yml) or the component inline",
    ),
    "required_component_input_unbound": (
        "pipeline.yml",
        5,
        3,
        "jobs.score.inputs",
        "input 'data' of the component is required and has no value",
        "inputs: {data: ...} on the job",
    ),
    "retry_max_retries_text": (
        "pipeline.yml",
        14,
        20,
        "jobs.score.retry_settings.max_retries",
        "expected an integer, got 'two'",
        "an integer (e.g. 2) or a binding ${{parent.inputs.<name>}}",
    ),
    "retry_timeout_too_long": (
        "pipeline.yml",
        14,
        16,
        "jobs.score.retry_settings.timeout",
        "300000 is out of range",
        "an integer 1 ≤ n ≤ 259200 (e.g. 60)",
    ),
    "retry_timeout_zero": (
        "pipeline.yml",
        14,
        16,
        "jobs.score.retry_settings.timeout",
        "0 is out of range",
        "an integer 1 ≤ n ≤ 259200 (e.g. 60)",
    ),
    "retry_unknown_key": (
        "pipeline.yml",
        14,
        7,
        "jobs.score.retry_settings.max_retry",
        "unknown key 'max_retry'",
        "did you mean 'max_retries'?",
    ),
    "set_unknown_input": (
        "--set",
        1,
        1,
        "inputs.rat",
        "--set inputs.rat: the pipeline has no input 'rat'",
        "did you mean 'rate'?",
    ),
    "set_wrong_type": (
        "--set",
        1,
        1,
        "inputs.count",
        "--set inputs.count: 'three' is not an integer",
        "an integer (e.g. 3)",
    ),
    "setting_bound_out_of_range": (
        "pipeline.yml",
        16,
        23,
        "jobs.score.resources.instance_count",
        "${{parent.inputs.nodes}} = 0: 0 is out of range",
        "an integer 1 ≤ n (e.g. 2)",
    ),
    "setting_bound_to_data": (
        "pipeline.yml",
        18,
        23,
        "jobs.score.resources.instance_count",
        "${{parent.inputs.files}} is uri_folder data, not a literal",
        "a binding to a literal input",
    ),
    "tag_value_list": (
        "pipeline.yml",
        3,
        10,
        "tags.owner",
        "a tag value must be text, got a list",
        "a string",
    ),
    "task_missing": (
        "pipeline.yml",
        3,
        3,
        "jobs.score",
        "required key 'task' is missing",
        "task: {type: run_function, code: ..., entry_script: ...}",
    ),
    "task_on_a_component_job": (
        "pipeline.yml",
        12,
        5,
        "jobs.score.task",
        "'task' is defined by the component and cannot be set on the job",
        "set task in the component",
    ),
    "threshold_below_minus_one": (
        "pipeline.yml",
        13,
        33,
        "jobs.score.mini_batch_error_threshold",
        "-2 is out of range",
        "an integer -1 ≤ n (e.g. 5)",
    ),
    "top_level_list": (
        "pipeline.yml",
        1,
        1,
        "",
        "expected a pipeline mapping, got a list",
        "a mapping with type, jobs",
    ),
    "type_mismatch_file_for_folder": (
        "pipeline.yml",
        12,
        13,
        "jobs.score.inputs.data",
        "input 'data' is declared uri_folder but is given uri_file data",
        "uri_folder data",
    ),
    "type_mismatch_string_for_integer": (
        "pipeline.yml",
        12,
        10,
        "jobs.score.inputs.n",
        "input 'n': 'three' is not an integer",
        "an integer (e.g. 3)",
    ),
    "unknown_component_input": (
        "pipeline.yml",
        12,
        7,
        "jobs.score.inputs.model",
        "the component has no input 'model'",
        "one of data, n",
    ),
    "unknown_expression": (
        "pipeline.yml",
        16,
        26,
        "jobs.score.task.program_arguments",
        "${{parent.foo.x}} is not an expression Fanout knows",
        "${{parent.inputs.<x>}}, ${{parent.outputs.<y>}}, ${{parent.jobs.<job>.outputs.<o>}}, ${{inputs.<x>}}, ${{outputs.<y>}}, ${{name}}, ${{default_datastore}}",
    ),
    "unknown_job_key": (
        "pipeline.yml",
        13,
        5,
        "jobs.score.compte",
        "unknown key 'compte'",
        "did you mean 'compute'?",
    ),
    "unknown_pipeline_input": (
        "pipeline.yml",
        6,
        13,
        "jobs.score.inputs.data",
        "the pipeline has no input 'nope'",
        "a declared name (there are none)",
    ),
    "unknown_top_level_key": ("pipeline.yml", 2, 1, "job", "unknown key 'job'", "did you mean 'jobs'?"),
    "unknown_upstream_job": (
        "pipeline.yml",
        6,
        13,
        "jobs.score.inputs.data",
        "there is no job 'prep'",
        "one of score",
    ),
    "unknown_upstream_output": (
        "pipeline.yml",
        13,
        10,
        "jobs.b.inputs.y",
        "job 'a' has no output 'model'",
        "one of out",
    ),
    "unsupported_job_type": (
        "pipeline.yml",
        4,
        11,
        "jobs.score.type",
        "job type 'sweep' is not supported by Fanout",
        "parallel or command",
    ),
    "uri_file_is_a_folder": (
        "pipeline.yml",
        8,
        15,
        "jobs.score.inputs.data.path",
        "'./data/files' is a folder but the input type is uri_file",
        "a file, or type uri_folder",
    ),
}
