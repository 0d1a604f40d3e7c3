"""The Function App's composition: the exact functions, their triggers and bindings, and an import that
reads no settings and touches no storage."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from typing import Any

from functions.constants import STORAGE_CONNECTION
from shared.api.app import ROUTES
from shared.orchestration import names
from tests.integration.functions.index import indexed_functions

HTTP_FUNCTIONS = {route.name for route in ROUTES}
TRIGGER_FUNCTIONS = {"ingest_spec", "ingest_snapshot", "handle_events"}


def _functions() -> dict[str, Any]:
    return indexed_functions()


def _bindings(function: Any) -> dict[str, dict[str, Any]]:
    found = {}
    for binding in function.get_bindings():
        data = binding.get_dict_repr()
        found[data["name"]] = json.loads(json.dumps(data, default=lambda v: getattr(v, "value", str(v))))
    return found


def test_the_exact_set_of_functions() -> None:
    durable = set(names.ORCHESTRATORS) | set(names.ACTIVITIES)
    assert len(names.ORCHESTRATORS) == 2
    assert len(names.ACTIVITIES) >= 10
    assert set(_functions()) == HTTP_FUNCTIONS | TRIGGER_FUNCTIONS | durable


def test_orchestrators_and_activities_are_registered_by_name_with_their_triggers() -> None:
    functions = _functions()
    for name in names.ORCHESTRATORS:
        assert _bindings(functions[name]) == {
            "context": {
                "direction": 0,
                "type": "orchestrationTrigger",
                "name": "context",
                "orchestration": name,
            }
        }, name
    for name in names.ACTIVITIES:
        assert _bindings(functions[name]) == {
            "payload": {"direction": 0, "type": "activityTrigger", "name": "payload", "activity": name}
        }, name


def test_http_functions_match_the_route_table_and_need_the_function_key() -> None:
    functions = _functions()
    for route in ROUTES:
        bindings = _bindings(functions[route.name])
        trigger = bindings["req"]
        assert trigger["type"] == "httpTrigger"
        assert trigger["authLevel"] == "function"
        assert trigger["route"] == route.template
        assert trigger["methods"] == [route.method]
        assert bindings["$return"]["type"] == "http"
        has_client = "client" in bindings
        assert has_client is route.needs_durable, route.name
        if has_client:
            assert bindings["client"]["type"] == "durableClient"


def test_blob_triggers_use_event_grid_on_the_drop_zones() -> None:
    functions = _functions()
    spec = _bindings(functions["ingest_spec"])
    assert spec["blob"] == {
        "direction": 0,  # IN
        "type": "blobTrigger",
        "name": "blob",
        "path": "specs/{name}",
        "connection": STORAGE_CONNECTION,
        "source": "EventGrid",
    }
    assert spec["client"]["type"] == "durableClient"
    snapshot = _bindings(functions["ingest_snapshot"])
    assert snapshot["blob"]["path"] == "snapshots/incoming/{name}"
    assert snapshot["blob"]["source"] == "EventGrid"
    assert set(snapshot) == {"blob"}


def test_events_queue_trigger() -> None:
    bindings = _bindings(_functions()["handle_events"])
    assert bindings["message"]["type"] == "queueTrigger"
    assert bindings["message"]["queueName"] == "fanout-events"
    assert bindings["message"]["connection"] == STORAGE_CONNECTION
    assert bindings["client"]["type"] == "durableClient"


def test_each_function_takes_exactly_its_bindings() -> None:
    # The Python worker refuses a function whose parameters differ from its bindings' names.
    for name, function in _functions().items():
        parameters = set(inspect.signature(function.get_user_function()).parameters)
        bindings = {binding for binding in _bindings(function) if binding != "$return"}
        assert parameters == bindings, name


def test_import_reads_no_settings_and_opens_no_connection() -> None:
    # Invalid settings and an unreachable storage account: indexing must still succeed, because
    # nothing but decoration happens when the host imports the app.
    script = """
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("a connection was opened at import time")
socket.socket.connect = refuse
import shared.settings
calls = []
original = shared.settings.get_settings
shared.settings.get_settings = lambda: calls.append(1) or original()
import function_app
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
print(len(names), len(calls))
"""
    env = {
        "FANOUT_SNAPSHOT_MAX_FILES": "not-a-number",
        "FANOUT_STORAGE_CONNECTION_STRING": "junk",
        "PATH": "",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    count, settings_reads = result.stdout.split()
    assert int(count) == len(_functions())
    assert settings_reads == "0"
