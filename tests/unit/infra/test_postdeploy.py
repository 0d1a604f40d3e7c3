"""The azd post-deploy hook: which blob triggers it subscribes, and the exact az commands."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from ruamel.yaml import YAML

from functions.constants import INGEST_SNAPSHOT_FUNCTION, INGEST_SPEC_FUNCTION
from tests.unit.infra.app_functions import app_functions
from tests.unit.infra.bicep import INFRA, load

ROOT = INFRA.parent


@lru_cache(maxsize=1)
def hook() -> ModuleType:
    """scripts/postdeploy.py, imported from its path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fanout_postdeploy", ROOT / "scripts" / "postdeploy.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_the_hook_finds_the_apps_event_grid_blob_triggers() -> None:
    postdeploy = hook()
    triggers = postdeploy.event_grid_blob_triggers(app_functions())
    by_function = {t.function: t for t in triggers}
    assert set(by_function) == {INGEST_SPEC_FUNCTION, INGEST_SNAPSHOT_FUNCTION}
    assert (
        by_function[INGEST_SPEC_FUNCTION].subject_begins_with
        == "/blobServices/default/containers/specs/blobs/"
    )
    assert (
        by_function[INGEST_SNAPSHOT_FUNCTION].subject_begins_with
        == "/blobServices/default/containers/snapshots/blobs/incoming/"
    )


def test_subscription_command_points_event_grid_at_the_blob_webhook() -> None:
    postdeploy = hook()
    trigger = postdeploy.parse_blob_path("ingest_snapshot", "snapshots/incoming/{name}")
    command = postdeploy.subscription_command(
        trigger, resource_group="rg-dev", system_topic="evgt-st", host="func-x.azurewebsites.net", key="K3y"
    )
    assert command[:5] == ["az", "eventgrid", "system-topic", "event-subscription", "create"]
    options = dict(zip(command[5::2], command[6::2], strict=False))
    assert options["--name"] == "ingest-snapshot"
    assert options["--system-topic-name"] == "evgt-st"
    assert options["--endpoint-type"] == "webhook"
    assert options["--endpoint"] == (
        "https://func-x.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions.ingest_snapshot&code=K3y"
    )
    assert options["--included-event-types"] == "Microsoft.Storage.BlobCreated"
    assert options["--subject-begins-with"] == "/blobServices/default/containers/snapshots/blobs/incoming/"
    assert command[command.index("--advanced-filter") + 1 : command.index("--advanced-filter") + 4] == [
        "subject",
        "StringNotEndsWith",
        ".error.json",
    ]


def test_the_wheel_is_uploaded_with_entra_id_and_its_name_matches_the_project() -> None:
    postdeploy = hook()
    command = postdeploy.upload_command(
        "stfanout", "agent", "fanout-0.1.0-py3-none-any.whl", Path("/tmp/w.whl")
    )
    assert command[command.index("--auth-mode") + 1] == "login"
    assert not any("key" in part.lower() for part in command)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    url = "https://st.blob.core.windows.net/agent/fanout-0.1.0-py3-none-any.whl"
    assert postdeploy.wheel_name_from_url(url) == f"fanout-{version}-py3-none-any.whl"


def test_every_value_the_hook_needs_is_a_bicep_output() -> None:
    text = (ROOT / "scripts" / "postdeploy.py").read_text()
    needed = set(re.findall(r'"((?:AZURE|FANOUT|EVENTGRID|AGENT)_[A-Z_]+)"', text))
    assert needed
    outputs = set(load("main.bicep")["outputs"])
    assert needed <= outputs, needed - outputs


def test_azure_yaml_deploys_this_folder_as_a_python_function_app_with_the_hook() -> None:
    config = YAML(typ="safe").load((ROOT / "azure.yaml").read_text())
    ((name, service),) = config["services"].items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    assert config["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    for platform in ("posix", "windows"):
        script = config["hooks"]["postdeploy"][platform]["run"]
        assert (ROOT / script).is_file(), script
    tags = load("app/function.bicep")["resources"]["site"]["config"]["tags"]["function"]
    assert tags["type"] == "union"
    assert tags["parameters"]["arg_2"] == {"'azd-service-name'": name}  # azd finds the app by this tag


def test_funcignore_keeps_the_app_and_drops_the_rest() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".funcignore").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {".venv/", "node_modules/", "tests/", "infra/"} <= ignored
    for needed in ("function_app.py", "host.json", "requirements.txt", "functions/", "shared/"):
        assert needed not in ignored


def test_the_hook_refuses_a_wheel_that_lacks_modules() -> None:
    postdeploy = hook()
    every = [str(p.relative_to(ROOT)) for pkg in ("shared", "functions") for p in (ROOT / pkg).rglob("*.py")]
    every = [p for p in every if "__pycache__" not in p]
    assert postdeploy.missing_modules(every) == []
    assert postdeploy.missing_modules([p for p in every if p != "shared/compute/environment.py"]) == [
        "shared/compute/environment.py"
    ]


def test_every_code_folder_is_a_regular_package_so_the_wheel_has_it() -> None:
    # setuptools' find_packages (pyproject.toml) only picks folders with an __init__.py: a folder of
    # modules without one would be missing on Batch nodes, which install the wheel.
    for package in ("shared", "functions"):
        for folder in {p.parent for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts}:
            assert (folder / "__init__.py").is_file(), f"{folder.relative_to(ROOT)} has no __init__.py"
