"""Node environments: hashing, the conda/python checks, and the bash the nodes run."""

from __future__ import annotations

import base64
import json
import shlex

import pytest

from shared.compute.environment import (
    READY_MARKER,
    agent_script,
    bash_command_line,
    conda_file_for_node,
    conda_only_packages,
    environment_problems,
    node_environment,
    preparation_script,
    preparation_settings,
)
from shared.plan import EnvironmentPlan

WHEEL = "fanout-0.1.0-py3-none-any.whl"
CONDA = {
    "name": "scoring",
    "channels": ["conda-forge"],
    "dependencies": ["python=3.11", "numpy=1.26", "pip", {"pip": ["scikit-learn==1.5.0"]}],
}


def test_default_image_applies_only_when_the_environment_names_none() -> None:
    own = node_environment(
        EnvironmentPlan(image="myacr.azurecr.io/score:1"), default_image="py", agent_package=WHEEL
    )
    assert own.image == "myacr.azurecr.io/score:1"
    assert node_environment(None, default_image="py", agent_package=WHEEL).image == "py"
    assert node_environment(None, default_image=None, agent_package=WHEEL).image is None


def test_environment_key_is_stable_and_changes_with_anything_that_shapes_it() -> None:
    plan = EnvironmentPlan(conda_file=CONDA, pip_requirements=["scikit-learn==1.5.0"])
    base = node_environment(plan, default_image="py", agent_package=WHEEL, agent_package_version="etag1")
    assert (
        base.key
        == node_environment(plan, default_image="py", agent_package=WHEEL, agent_package_version="etag1").key
    )
    changed = [
        node_environment(plan, default_image="py2", agent_package=WHEEL, agent_package_version="etag1"),
        node_environment(plan, default_image="py", agent_package=WHEEL, agent_package_version="etag2"),
        node_environment(None, default_image="py", agent_package=WHEEL, agent_package_version="etag1"),
    ]
    assert len({base.key, *(e.key for e in changed)}) == 4
    assert base.env_dir == f"$AZ_BATCH_NODE_SHARED_DIR/fanout/envs/{base.key}"


@pytest.mark.parametrize(
    ("pin", "bad"),
    [
        ("python=3.8", True),
        ("python==3.10.4", True),
        ("python<3.11", True),
        ("python<=3.10", True),
        ("python=3.11", False),
        ("python=3.12.*", False),
        ("python>=3.8", False),
        ("python<3.13", False),
        ("python", False),
    ],
)
def test_conda_files_pinning_python_older_than_311_are_refused(pin: str, bad: bool) -> None:
    problems = environment_problems(EnvironmentPlan(conda_file={"dependencies": [pin, "pip"]}))
    assert bool(problems) is bad
    if bad:
        assert pin in problems[0]
        assert "3.11 or newer" in problems[0]


def test_conda_file_gets_python_and_pip_when_it_lacks_them() -> None:
    built = conda_file_for_node({"dependencies": ["numpy"]})
    assert built["dependencies"] == ["python>=3.11", "numpy", "pip"]
    assert conda_file_for_node(CONDA)["dependencies"] == CONDA["dependencies"]
    assert conda_only_packages(CONDA) == ["numpy=1.26"]


def test_preparation_settings_carry_the_files_base64_encoded() -> None:
    plan = EnvironmentPlan(conda_file=CONDA, pip_requirements=["scikit-learn==1.5.0", "pandas>=2"])
    env = node_environment(plan, default_image="py", agent_package=WHEEL)
    settings = preparation_settings(env)
    assert settings["FANOUT_ENV_KEY"] == env.key
    assert json.loads(base64.b64decode(settings["FANOUT_CONDA_FILE_B64"])) == CONDA
    assert (
        base64.b64decode(settings["FANOUT_PIP_REQUIREMENTS_B64"]).decode()
        == "scikit-learn==1.5.0\npandas>=2\n"
    )
    assert settings["FANOUT_CONDA_ONLY_PACKAGES"] == "numpy=1.26"
    plain = node_environment(None, default_image="py", agent_package=WHEEL)
    assert preparation_settings(plain) == {"FANOUT_ENV_KEY": plain.key}


def test_preparation_script_is_idempotent_by_construction() -> None:
    env = node_environment(None, default_image="py", agent_package=WHEEL)
    script = preparation_script(env)
    # lock, skip when ready, clean half-built folders, mark ready last
    assert script.index("flock 9") < script.index(f'if [ -f "$env_dir/{READY_MARKER}" ]')
    assert script.index('rm -rf "$env_dir"') < script.index("-m venv")
    assert script.rstrip().splitlines()[-2] == f'touch "$env_dir/{READY_MARKER}"'
    assert f"fanout-agent/{WHEEL}" in script


def test_agent_script_quotes_every_argument() -> None:
    env = node_environment(None, default_image="py", agent_package=WHEEL)
    hostile = ["agent", "--run", "r'; rm -rf / #", "--job", "$(reboot)", "--node-id", "0"]
    script = agent_script(env, hostile)
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    assert shlex.split(exec_line)[2:] == hostile


def test_command_line_splits_back_into_bash_and_the_script() -> None:
    script = "echo 'it''s'; echo \"$HOME\"\n"
    assert shlex.split(bash_command_line(script)) == ["/bin/bash", "-c", script]
