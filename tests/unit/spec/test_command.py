"""Command jobs: templating, optional blocks, limits, code and environment."""

from __future__ import annotations

from shared.plan import CodeRef, EnvironmentPlan

from .conftest import SpecWriter, compile_ok, one_error

COMPONENT = """
    $schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
    type: command
    name: train
    version: 1
    inputs:
      data: {type: uri_folder}
      epochs: {type: integer, default: 10}
      rate: {type: number, optional: true}
      note: {type: string, optional: true}
    outputs:
      model: {type: uri_folder}
    code: ../src
    environment: azureml:sklearn-env@latest
    command: >-
      python train.py --data ${{inputs.data}} --epochs ${{inputs.epochs}}
      $[[--rate ${{inputs.rate}}]] $[[--note "${{inputs.note}}"]]
      --model ${{outputs.model}}
"""


def test_optional_blocks_are_dropped_or_unwrapped(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        jobs:
          train:
            type: command
            component: ./comp/train.yml
            inputs:
              data: {type: uri_folder, path: ./data/files}
              note: hello world
            limits:
              timeout: 3600
            resources:
              instance_count: 2
        """,
        files={"comp/train.yml": COMPONENT},
    )
    job = compile_ok(path).job("train")
    assert job.command is not None
    assert job.command.command == (
        'python train.py --data ${{inputs.data}} --epochs 10 --note "hello world" --model ${{outputs.model}}'
    )
    assert job.command.timeout == 3600
    assert job.instance_count == 2
    assert job.code == CodeRef(local_path=str(path.parent / "src"))
    assert job.environment == EnvironmentPlan(reference="azureml:sklearn-env@latest")
    assert "rate" not in job.inputs  # an optional input without value is not in the plan


def test_inline_command_job_with_literals_and_parent_inputs(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        inputs:
          greeting: hi
        jobs:
          hello:
            type: command
            inputs:
              times: 3
              flag: false
            command: echo ${{parent.inputs.greeting}} ${{inputs.times}} ${{inputs.flag}}
            environment:
              image: python:3.11-slim
        """
    )
    job = compile_ok(path).job("hello")
    assert job.command is not None
    assert job.command.command == "echo hi 3 False"
    assert job.code is None
    assert job.environment == EnvironmentPlan(image="python:3.11-slim")


def test_command_job_cannot_override_the_component_command(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        jobs:
          train:
            type: command
            component: ./comp/train.yml
            command: echo other
            inputs:
              data: {type: uri_folder, path: ./data/files}
        """,
        files={"comp/train.yml": COMPONENT},
    )
    issue = one_error(path)
    assert (issue.line, issue.column, issue.path) == (6, 5, "jobs.train.command")
    assert issue.message == "'command' is defined by the component and cannot be set on the job"


def test_inline_component_mapping(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        jobs:
          hello:
            type: command
            component:
              type: command
              inputs:
                who: {type: string, default: world}
              command: echo hello ${{inputs.who}}
        """
    )
    job = compile_ok(path).job("hello")
    assert job.command is not None
    assert job.command.command == "echo hello world"


def test_bad_limit_in_a_component_points_at_the_component_file(write_spec: SpecWriter) -> None:
    path = write_spec(
        """
        type: pipeline
        jobs:
          hello:
            type: command
            component: ./comp/hello.yml
        """,
        files={"comp/hello.yml": "type: command\ncommand: echo hi\nlimits:\n  timeout: -5\n"},
    )
    issue = one_error(path)
    assert (issue.file, issue.line, issue.column, issue.path) == (
        str(path.parent / "comp" / "hello.yml"),
        4,
        12,
        "limits.timeout",
    )
    assert issue.message == "-5 is out of range"
