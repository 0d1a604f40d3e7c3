"""The Bicep files parse, the modules fit together, and the pools, storage and roles are what the
deployment guide promises (syntax-level checks: offline there is no Bicep compiler)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from lark.exceptions import LarkError
from pycep import BicepParser

from shared.settings import ComputeTarget, PoolKind, Settings
from tests.unit.infra.bicep import INFRA, bicep_files, load, param_defaults, resolve, resource, variables

ROOT = INFRA.parent


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    document = load(str(path.relative_to(INFRA)))
    assert document["resources"] or document["modules"]


def test_the_parser_rejects_broken_bicep(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bicep"
    broken.write_text("resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: 'a'\n")
    with pytest.raises(LarkError):
        BicepParser().parse(file_path=broken)


def test_main_is_subscription_scoped_and_its_modules_fit() -> None:
    main = load("main.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    for name, module in main["modules"].items():
        path = module["detail"]["path"]
        assert (INFRA / path).is_file(), f"module {name}: {path} is missing"
        declared = load(path)["parameters"]
        passed = set(module["config"]["params"])
        assert passed <= set(declared), f"module {name} passes unknown params {passed - set(declared)}"
        required = {p for p, spec in declared.items() if spec["default"] is None}
        assert required <= passed, f"module {name} misses required params {required - passed}"


def test_module_outputs_used_by_main_exist() -> None:
    main_text = (INFRA / "main.bicep").read_text()
    modules = load("main.bicep")["modules"]
    used = set(re.findall(r"\b(\w+)\.outputs\.(\w+)", main_text))
    assert used
    for module, output in used:
        outputs = load(modules[module]["detail"]["path"])["outputs"]
        assert output in outputs, f"{module} has no output {output}"


def test_azd_parameters_cover_every_required_parameter() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = load("main.bicep")["parameters"]
    required = {name for name, spec in declared.items() if spec["default"] is None}
    assert required <= set(parameters)
    assert set(parameters) <= set(declared)
    for name, entry in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", entry["value"]), name


def test_storage_account_has_no_shared_keys_and_no_public_blobs() -> None:
    account = resource(load("app/storage.bicep"), "account")["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True


def batch_scope() -> tuple[dict[str, Any], dict[str, Any]]:
    """batch.bicep with main.bicep's parameter defaults flowing into it (GPU pool enabled)."""
    main, batch = load("main.bicep"), load("app/batch.bicep")
    main_defaults = param_defaults(main)
    passed = main["modules"]["batch"]["config"]["params"]
    scope = {
        name: main_defaults.get(value, value) for name, value in passed.items() if isinstance(value, str)
    }
    return batch, {**scope, **variables(batch)}


def compute_targets() -> dict[str, Any]:
    batch, scope = batch_scope()
    targets = {**resolve("cpuTargets", scope, batch), **resolve("gpuTargets", scope, batch)}
    return json.loads(json.dumps(targets))


def test_compute_targets_are_valid_settings_and_name_the_pools() -> None:
    batch, scope = batch_scope()
    targets = compute_targets()
    settings = Settings(compute_targets=json.dumps(targets))
    assert set(settings.compute_targets) == {"default", "cpu-cluster", "gpu-cluster"}
    pools = {resource(batch, r)["name"]: resource(batch, r)["properties"] for r in ("cpuPool", "gpuPool")}
    for name, target in settings.compute_targets.items():
        pool = resolve(pools[target.pool_id], scope, batch)
        assert target.vm_size == pool["vmSize"], name
        assert target.task_slots == pool["taskSlotsPerNode"], name
        assert target.containers is (
            "containerConfiguration" in pool["deploymentConfiguration"]["virtualMachineConfiguration"]
        )
        assert (
            target.image
            in pool["deploymentConfiguration"]["virtualMachineConfiguration"]["containerConfiguration"][
                "containerImageNames"
            ]
        )
    gpu: ComputeTarget = settings.compute_targets["gpu-cluster"]
    assert (gpu.kind, gpu.vm_size, gpu.gpus) == (PoolKind.GPU, "Standard_NC4as_T4_v3", 1)
    assert settings.compute_targets["default"].kind is PoolKind.CPU


def test_pools_autoscale_from_zero_on_pending_tasks_with_the_pool_identity() -> None:
    batch, scope = batch_scope()
    for name in ("cpuPool", "gpuPool"):
        pool = resolve(resource(batch, name), scope, batch)
        assert pool["identity"]["type"] == "UserAssigned"
        assert pool["identity"]["userAssignedIdentities"] == {"${identityId}": {}}
        vm = pool["properties"]["deploymentConfiguration"]["virtualMachineConfiguration"]
        assert vm["imageReference"] == {
            "publisher": "microsoft-dsvm",
            "offer": "ubuntu-hpc",
            "sku": "2404",
            "version": "latest",
        }
        assert vm["nodeAgentSkuId"] == "batch.node.ubuntu 24.04"
        assert vm["containerConfiguration"]["type"] == "DockerCompatible"
        autoscale = pool["properties"]["scaleSettings"]["autoScale"]
        assert autoscale["evaluationInterval"] == "PT5M"  # Batch's minimum
    formula = variables(batch)["formulaHead"] + variables(batch)["formulaTail"]
    text = "\n".join(formula)
    assert "$PendingTasks" in text
    assert "$TargetLowPriorityNodes" in text  # the spot option
    assert "$NodeDeallocationOption = taskcompletion;" in text
    assert resource(load("app/batch.bicep"), "account")["properties"]["allowedAuthenticationModes"] == ["AAD"]


def test_the_identity_gets_data_roles_and_batch_job_submitter_only() -> None:
    roles = variables(load("app/rbac.bicep"))["roles"]
    assert roles["batchJobSubmitter"] == "48e5e92e-a480-4e71-aa9c-2778f4c13781"
    assert roles["storageQueueDataContributor"] == "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
    assert roles["storageTableDataContributor"] == "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
    text = (INFRA / "app" / "rbac.bicep").read_text()
    broad = {
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
    }  # Owner, Contributor
    assert not any(role in text for role in broad)


def test_function_app_is_flex_consumption_python_311_or_newer() -> None:
    function = load("app/function.bicep")
    plan = resource(function, "plan")
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    site = resource(function, "site")
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["httpsOnly"] is True
    runtime = site["properties"]["functionAppConfig"]["runtime"]
    assert runtime["name"] == "python"
    version = param_defaults(load("main.bicep"))["pythonVersion"]
    assert tuple(int(p) for p in version.split(".")) >= (3, 11)
    deployment = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "UserAssignedIdentity"


def test_agent_wheel_name_matches_the_project_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert param_defaults(load("main.bicep"))["agentPackageName"] == f"fanout-{version}-py3-none-any.whl"
