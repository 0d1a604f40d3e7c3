"""azd post-deploy hook: upload the agent wheel, then subscribe the blob triggers to Event Grid.

Runs after ``azd deploy`` (and ``azd up``) on the deploying machine, with the azd environment's values
(the Bicep outputs) in its environment. It needs the Azure CLI (``az``, logged in) and the project's
virtual environment (``make setup``), because it reads the blob triggers from ``function_app`` itself —
the function names and container paths live in the code, once.

1. Build the Fanout wheel (``pip wheel``), check it holds every module of ``shared/`` and ``functions/``,
   and upload it to ``FANOUT_AGENT_PACKAGE_URL``: Batch nodes install it in their job preparation task.
   Its name must match the URL (version in pyproject.toml).
2. Wait for the Function App's ``blobs_extension`` system key (it exists once the host has indexed the
   Event Grid blob triggers of the deployed code).
3. For each blob trigger with the Event Grid source, create (or update) an event subscription on the
   storage account's system topic: ``BlobCreated`` events under the trigger's container and prefix go
   to ``https://<host>/runtime/webhooks/blobs?functionName=Host.Functions.<name>&code=<key>``; the
   ``.error.json`` files Fanout writes beside rejected blobs are filtered out.

Re-running it is harmless: uploads overwrite, subscriptions are create-or-update.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
IGNORED_SUFFIX = ".error.json"
KEY_WAIT_SECONDS = 300


@dataclass(frozen=True)
class BlobTrigger:
    """A blob trigger of the Function App: its function name and the blobs it watches."""

    function: str
    container: str
    prefix: str

    @property
    def subject_begins_with(self) -> str:
        return f"/blobServices/default/containers/{self.container}/blobs/{self.prefix}"

    @property
    def subscription_name(self) -> str:
        return self.function.replace("_", "-")[:64]


def parse_blob_path(function: str, path: str) -> BlobTrigger:
    """``container/prefix{name}`` → the trigger's container and the fixed prefix before the first ``{``."""
    container, _, rest = path.partition("/")
    return BlobTrigger(function=function, container=container, prefix=rest.split("{", 1)[0])


def event_grid_blob_triggers(functions: Iterable[Any]) -> list[BlobTrigger]:
    """The blob triggers with the Event Grid source among ``app.get_functions()``."""
    triggers = []
    for function in functions:
        trigger = function.get_trigger().get_dict_repr()
        source = trigger.get("source")
        source = getattr(source, "value", source)
        if trigger.get("type") == "blobTrigger" and str(source) == "EventGrid":
            triggers.append(parse_blob_path(function.get_function_name(), str(trigger["path"])))
    return sorted(triggers, key=lambda t: t.function)


def webhook_url(host: str, function: str, key: str) -> str:
    """The blob extension's Event Grid webhook of one function."""
    return f"https://{host}/runtime/webhooks/blobs?functionName=Host.Functions.{function}&code={key}"


def subscription_command(
    trigger: BlobTrigger, *, resource_group: str, system_topic: str, host: str, key: str
) -> list[str]:
    """The ``az`` command that creates (or updates) the trigger's event subscription."""
    return [
        "az", "eventgrid", "system-topic", "event-subscription", "create",
        "--name", trigger.subscription_name,
        "--resource-group", resource_group,
        "--system-topic-name", system_topic,
        "--endpoint-type", "webhook",
        "--endpoint", webhook_url(host, trigger.function, key),
        "--included-event-types", BLOB_CREATED,
        "--subject-begins-with", trigger.subject_begins_with,
        "--advanced-filter", "subject", "StringNotEndsWith", IGNORED_SUFFIX,
        "--output", "none",
    ]  # fmt: skip


def upload_command(account: str, container: str, blob: str, path: Path) -> list[str]:
    """The ``az`` command that uploads the wheel with the deploying user's Entra ID (no account key)."""
    return [
        "az", "storage", "blob", "upload",
        "--auth-mode", "login",
        "--account-name", account,
        "--container-name", container,
        "--name", blob,
        "--file", str(path),
        "--overwrite",
        "--output", "none",
    ]  # fmt: skip


def wheel_name_from_url(url: str) -> str:
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def require(env: dict[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise SystemExit(
            f"postdeploy: missing azd environment values {', '.join(missing)}; run `azd provision`"
        )
    return [env[n] for n in names]


def run(command: Sequence[str], *, capture: bool = False) -> str:
    shown = " ".join(command if "--endpoint" not in command else [c.split("&code=")[0] for c in command])
    print(f"postdeploy: {shown}", flush=True)
    done = subprocess.run(command, check=True, text=True, capture_output=capture)
    return done.stdout.strip() if capture else ""


def retry(action: Callable[[], str], *, what: str, seconds: float, every: float = 10) -> str:
    """Call ``action`` until it returns something non-empty (role assignments and host start take time)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = action()
            if value:
                return value
        except subprocess.CalledProcessError as exc:
            print(f"postdeploy: {what} not ready yet ({exc.returncode})", flush=True)
        if time.monotonic() > deadline:
            raise SystemExit(f"postdeploy: gave up waiting for {what} after {seconds:.0f}s")
        time.sleep(every)


def missing_modules(wheel_names: Iterable[str], root: Path = ROOT) -> list[str]:
    """Python files of ``shared/`` and ``functions/`` that a wheel with ``wheel_names`` lacks."""
    names = set(wheel_names)
    sources = [p for package in ("shared", "functions") for p in sorted((root / package).rglob("*.py"))]
    relative = [str(p.relative_to(root)) for p in sources if "__pycache__" not in p.parts]
    return [name for name in relative if name not in names]


def build_wheel(out_dir: Path) -> Path:
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out_dir), str(ROOT)]
    )
    (wheel,) = out_dir.glob("fanout-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        missing = missing_modules(archive.namelist())
    if missing:
        raise SystemExit(f"postdeploy: the wheel lacks {missing[:5]}: add __init__.py to those folders")
    return wheel


def upload_agent(env: dict[str, str]) -> None:
    account, container, url = require(
        env, "AZURE_STORAGE_ACCOUNT_NAME", "AGENT_CONTAINER_NAME", "FANOUT_AGENT_PACKAGE_URL"
    )
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp))
        expected = wheel_name_from_url(url)
        if wheel.name != expected:
            raise SystemExit(
                f"postdeploy: built {wheel.name} but the app expects {expected}: set the Bicep parameter "
                "agentPackageName (infra/main.bicep) to the version in pyproject.toml"
            )
        command = upload_command(account, container, wheel.name, wheel)
        retry(lambda: run(command) or "uploaded", what="blob upload permission", seconds=300)


def subscribe_blob_triggers(env: dict[str, str]) -> None:
    group, app, host, topic = require(
        env,
        "AZURE_RESOURCE_GROUP",
        "AZURE_FUNCTION_APP_NAME",
        "AZURE_FUNCTION_APP_HOST",
        "EVENTGRID_SYSTEM_TOPIC_NAME",
    )
    sys.path.insert(0, str(ROOT))
    import function_app

    triggers = event_grid_blob_triggers(function_app.app.get_functions())
    if not triggers:
        print("postdeploy: no Event Grid blob triggers; nothing to subscribe")
        return
    key_command = [
        "az", "functionapp", "keys", "list", "--resource-group", group, "--name", app,
        "--query", "systemKeys.blobs_extension", "--output", "tsv",
    ]  # fmt: skip
    key = retry(
        lambda: run(key_command, capture=True), what="the blobs_extension key", seconds=KEY_WAIT_SECONDS
    )
    for trigger in triggers:
        run(subscription_command(trigger, resource_group=group, system_topic=topic, host=host, key=key))
    print(json.dumps({t.function: t.subject_begins_with for t in triggers}, indent=2))


def main() -> None:
    env = dict(os.environ)
    upload_agent(env)
    subscribe_blob_triggers(env)


if __name__ == "__main__":
    main()
