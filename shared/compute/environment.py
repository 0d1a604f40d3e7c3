"""Node environments: how a Batch node gets the Python that runs the agent and the user's code.

An Azure ML environment is an image plus, optionally, a conda file (whose ``pip:`` section holds pip
requirements). On Batch, Fanout turns it into:

- a **container image** for the agent tasks (the environment's ``image``, else the compute target's
  default image) when the pool runs containers; the host itself when it does not;
- a **job preparation task** that builds a Python environment once per node, inside that same image,
  under the node's shared directory: ``$AZ_BATCH_NODE_SHARED_DIR/fanout/envs/<key>``. ``<key>`` is a hash
  of everything that shapes the environment (image, conda file, pip lines, the Fanout wheel and its
  version), so identical environments are built once per node and reused by every later job; a changed
  wheel or conda file gets a new folder.
- the agent task then runs ``<env>/bin/fanout agent ...`` from that folder.

Building is idempotent (Batch may re-run a preparation task, e.g. after a node reboot): the build holds
an exclusive ``flock`` on ``<env>.lock``, skips everything when ``<env>/.fanout-ready`` exists, otherwise
deletes any half-built folder and builds from scratch; the ready marker is written last.

How the Python is built: with a conda file and a conda-compatible tool in the image (micromamba, mamba or
conda), ``conda env create`` from the file, then ``pip install`` of the Fanout wheel into it. Otherwise a
``venv`` of the image's ``python3`` (``--system-site-packages``, so packages baked into the image stay
visible), then the conda file's pip lines and the wheel. Conda-only packages that cannot be installed that
way are named in the preparation task's output. The agent runs user code in its own interpreter, so the
environment's Python must be 3.11 or newer; :func:`environment_problems` catches a conda file that pins
an older one before anything is submitted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
from collections.abc import Mapping, Sequence

from pydantic import Field

from shared.models import FrozenModel
from shared.plan import EnvironmentPlan

#: Where on a node Fanout keeps its environments and caches (expanded by bash on the node).
NODE_ROOT = "$AZ_BATCH_NODE_SHARED_DIR/fanout"
#: File written last into a finished environment folder.
READY_MARKER = ".fanout-ready"
#: The oldest Python the agent supports.
MIN_PYTHON = (3, 11)
#: Relative path (in the preparation task's working directory) of the downloaded Fanout wheel.
WHEEL_DIR = "fanout-agent"
#: Exit code of the node scripts when the environment is unusable (Batch then retries the task).
EXIT_ENVIRONMENT = 3

_PYTHON_PIN = re.compile(r"^python\s*(?P<op>==|=|<=|<|~=|>=|>)?\s*(?P<major>\d+)(?:\.(?P<minor>\d+))?")
_PACKAGE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+")


class NodeEnvironment(FrozenModel):
    """Everything that shapes the Python environment of an agent on a node."""

    image: str | None = Field(description="Container image of the tasks; None runs on the host.")
    conda_file: dict[str, object] | None = Field(default=None, description="Parsed conda file, if any.")
    pip_requirements: list[str] = Field(default_factory=list, description="pip lines of the conda file.")
    agent_package: str = Field(
        description="File name of the Fanout wheel, e.g. fanout-0.1.0-py3-none-any.whl."
    )
    agent_package_version: str = Field(
        default="", description="What identifies the wheel's content (its blob ETag), so a redeploy rebuilds."
    )

    @property
    def key(self) -> str:
        """A short hash of the environment; the name of its folder on the node."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def env_dir(self) -> str:
        """The environment's folder on a node, as a bash expression."""
        return f"{NODE_ROOT}/envs/{self.key}"


def node_environment(
    plan: EnvironmentPlan | None,
    *,
    default_image: str | None,
    agent_package: str,
    agent_package_version: str = "",
) -> NodeEnvironment:
    """The node environment of a job.

    Args:
        plan: the job's environment (None: the default image, no extra packages).
        default_image: image used when the plan names none; None when the pool runs no containers.
        agent_package: file name of the Fanout wheel.
        agent_package_version: the wheel's ETag (or anything that changes with its content).
    """
    image = (plan.image if plan and plan.image else None) or default_image
    return NodeEnvironment(
        image=image,
        conda_file=plan.conda_file if plan else None,
        pip_requirements=list(plan.pip_requirements) if plan else [],
        agent_package=agent_package,
        agent_package_version=agent_package_version,
    )


def _conda_dependencies(conda_file: Mapping[str, object] | None) -> list[str]:
    if not conda_file:
        return []
    dependencies = conda_file.get("dependencies") or []
    if not isinstance(dependencies, list):
        return []
    return [str(d).strip() for d in dependencies if isinstance(d, str)]


def conda_only_packages(conda_file: Mapping[str, object] | None) -> list[str]:
    """Conda dependencies other than python and pip (installable only with a conda tool)."""
    names = []
    for dependency in _conda_dependencies(conda_file):
        name = _PACKAGE_NAME.match(dependency.split("::")[-1])
        if name and name.group(0).lower() not in {"python", "pip"}:
            names.append(dependency)
    return names


def conda_file_for_node(conda_file: Mapping[str, object]) -> dict[str, object]:
    """The conda file as built on a node: ``python`` and ``pip`` are added when it lacks them, because
    the agent needs a Python of its own in the environment and installs itself with pip."""
    result = dict(conda_file)
    raw = result.get("dependencies")
    dependencies: list[object] = list(raw) if isinstance(raw, list) else []
    names = set()
    for dependency in dependencies:
        name = _PACKAGE_NAME.match(str(dependency).split("::")[-1]) if isinstance(dependency, str) else None
        if name:
            names.add(name.group(0).lower())
    if "python" not in names:
        dependencies.insert(0, f"python>={MIN_PYTHON[0]}.{MIN_PYTHON[1]}")
    if "pip" not in names:
        dependencies.append("pip")
    result["dependencies"] = dependencies
    return result


def environment_problems(plan: EnvironmentPlan | None) -> list[str]:
    """What makes an environment unusable for the agent, as sentences (empty when it is fine).

    Today one check: a conda file pinning Python older than 3.11 (the agent and the user's code share
    one interpreter).
    """
    problems = []
    for dependency in _conda_dependencies(plan.conda_file if plan else None):
        match = _PYTHON_PIN.match(dependency)
        if not match or match.group("op") in {">=", ">"} or match.group("minor") is None:
            continue
        version = (int(match.group("major")), int(match.group("minor")))
        too_old = version <= MIN_PYTHON if match.group("op") == "<" else version < MIN_PYTHON
        if too_old:
            problems.append(
                f"the conda file pins '{dependency}', but Fanout's agent runs your code in the environment's "
                f"own Python, which must be {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer: change it to e.g. "
                "'python=3.11'"
            )
    return problems


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def preparation_settings(env: NodeEnvironment) -> dict[str, str]:
    """Environment variables of the preparation task: the environment's files, base64-encoded."""
    settings = {"FANOUT_ENV_KEY": env.key}
    if env.conda_file:
        # JSON is YAML: conda reads it as an environment file.
        settings["FANOUT_CONDA_FILE_B64"] = _b64(json.dumps(conda_file_for_node(env.conda_file), indent=1))
        conda_only = conda_only_packages(env.conda_file)
        if conda_only:
            settings["FANOUT_CONDA_ONLY_PACKAGES"] = " ".join(conda_only)
    if env.pip_requirements:
        settings["FANOUT_PIP_REQUIREMENTS_B64"] = _b64("\n".join(env.pip_requirements) + "\n")
    return settings


def preparation_script(env: NodeEnvironment) -> str:
    """The bash script of the job preparation task (builds the environment once per node)."""
    wheel = shlex.quote(f"{WHEEL_DIR}/{env.agent_package}")
    key = env.key
    return f"""set -euo pipefail
root="${{AZ_BATCH_NODE_SHARED_DIR:?fanout: not on a Batch node}}/fanout"
env_dir="$root/envs/{key}"
wheel="$PWD/"{wheel}
mkdir -p "$root/envs"
exec 9>"$env_dir.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if [ -f "$env_dir/{READY_MARKER}" ]; then
  echo "fanout: environment {key} is already prepared on this node"
  exit 0
fi
echo "fanout: preparing environment {key} in $env_dir"
rm -rf "$env_dir"
conda_bin=""
if [ -n "${{FANOUT_CONDA_FILE_B64:-}}" ]; then
  conda_bin="$(command -v micromamba || command -v mamba || command -v conda || true)"
fi
if [ -n "$conda_bin" ]; then
  printf '%s' "$FANOUT_CONDA_FILE_B64" | base64 -d > conda.yml
  if [ "$(basename "$conda_bin")" = micromamba ]; then
    "$conda_bin" create --yes --prefix "$env_dir" --file conda.yml
  else
    "$conda_bin" env create --prefix "$env_dir" --file conda.yml
  fi
else
  python_bin="$(command -v python3 || command -v python || true)"
  if [ -z "$python_bin" ]; then
    echo "fanout: the image has no python3; use an image with Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+" >&2
    exit {EXIT_ENVIRONMENT}
  fi
  if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info < ({MIN_PYTHON[0]}, {MIN_PYTHON[1]}))'; then
    echo "fanout: $python_bin is Python $("$python_bin" -V 2>&1); the agent needs \
{MIN_PYTHON[0]}.{MIN_PYTHON[1]}+: use another image or a conda file with python=3.11" >&2
    exit {EXIT_ENVIRONMENT}
  fi
  if [ -n "${{FANOUT_CONDA_ONLY_PACKAGES:-}}" ]; then
    echo "fanout: no conda in the image; NOT installed (conda-only): $FANOUT_CONDA_ONLY_PACKAGES" >&2
  fi
  "$python_bin" -m venv --system-site-packages "$env_dir"
  if [ -n "${{FANOUT_PIP_REQUIREMENTS_B64:-}}" ]; then
    printf '%s' "$FANOUT_PIP_REQUIREMENTS_B64" | base64 -d > requirements.txt
    "$env_dir/bin/python" -m pip install --no-input --disable-pip-version-check -r requirements.txt
  fi
fi
"$env_dir/bin/python" -m pip install --no-input --disable-pip-version-check "$wheel"
touch "$env_dir/{READY_MARKER}"
echo "fanout: environment {key} is ready"
"""


def agent_script(env: NodeEnvironment, argv: Sequence[str]) -> str:
    """The bash script of an agent task: run ``fanout <argv>`` from the prepared environment."""
    command = " ".join(shlex.quote(arg) for arg in argv)
    return f"""set -euo pipefail
env_dir="${{AZ_BATCH_NODE_SHARED_DIR:?fanout: not on a Batch node}}/fanout/envs/{env.key}"
if [ ! -f "$env_dir/{READY_MARKER}" ]; then
  echo "fanout: environment {env.key} is not prepared on this node (the job preparation task did not \
finish)" >&2
  exit {EXIT_ENVIRONMENT}
fi
export FANOUT_HOME="${{FANOUT_HOME:-$AZ_BATCH_NODE_SHARED_DIR/fanout/home}}"
cd "${{AZ_BATCH_TASK_WORKING_DIR:-$PWD}}"
exec "$env_dir/bin/fanout" {command}
"""


def bash_command_line(script: str) -> str:
    """A Batch command line running ``script`` with bash (Batch does not use a shell by itself)."""
    return "/bin/bash -c " + shlex.quote(script)
