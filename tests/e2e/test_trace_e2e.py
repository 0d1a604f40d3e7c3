"""One run is one trace: the submission's span, the orchestration's activity spans (this process) and
every mini-batch span of the agents (separate processes, exporting over OTLP/HTTP to a receiver the test
serves) share one trace id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.orchestration import names
from shared.orchestration.contracts import RunStatus
from shared.runs import load_plan
from shared.settings import get_settings
from shared.storage import StorageClients
from tests.e2e.conftest import run_file, write
from tests.helpers import wait_until


@dataclass
class ReceivedSpan:
    name: str
    trace_id: str
    service: str


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP (protobuf) collector on 127.0.0.1: keeps the spans, accepts and drops metrics."""

    url: str = ""
    spans: list[ReceivedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, path: str, body: bytes) -> None:
        if path != "/v1/traces":
            return
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        a.value.string_value
                        for a in resource_spans.resource.attributes
                        if a.key == "service.name"
                    ),
                    "",
                )
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        self.spans.append(ReceivedSpan(span.name, span.trace_id.hex(), service))

    def named(self, name: str) -> list[ReceivedSpan]:
        with self.lock:
            return [span for span in self.spans if span.name == name]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    collected = OtlpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            collected.receive(self.path, body)
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    collected.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield collected
    server.shutdown()
    server.server_close()


def test_submit_activities_and_mini_batches_share_one_trace(
    tmp_path: Path,
    fast_polls: StorageClients,
    receiver: OtlpReceiver,
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The agents are separate processes: they export to the receiver (they inherit this environment).
    monkeypatch.setenv("FANOUT_TELEMETRY", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    get_settings.cache_clear()
    for index in range(3):
        write(tmp_path / "traced" / "data" / f"f{index}.txt", f"{index}\n")
    write(tmp_path / "traced" / "src" / "score.py", "def run(mini_batch):\n    return mini_batch\n")
    spec = write(
        tmp_path / "traced" / "pipeline.yml",
        """
        type: pipeline
        settings: {default_compute: azureml:cpu-cluster}
        jobs:
          score:
            type: parallel
            inputs: {files: {type: uri_folder, path: ./data}}
            input_data: ${{inputs.files}}
            mini_batch_size: "1"
            max_concurrency_per_instance: 1
            task: {type: run_function, code: ./src, entry_script: score.py}
        """,
    )
    result, printed = run_file(spec)
    assert result.status is RunStatus.COMPLETED, printed

    (root,) = [span for span in spans.get_finished_spans() if span.name == "fanout.cli.run"]
    trace_id = format(root.context.trace_id, "032x")
    assert load_plan(fast_polls, result.run_id).trace["traceparent"].split("-")[1] == trace_id

    activities = {
        span.name: format(span.context.trace_id, "032x")
        for span in spans.get_finished_spans()
        if span.attributes and span.attributes.get("fanout.run_id") == result.run_id
    }
    for name in (names.PREPARE_STEP, names.PLAN_STEP, names.DISPATCH_STEP, names.START_AGENTS):
        assert activities.get(f"fanout.activity.{name}") == trace_id, (name, activities)
    assert set(activities.values()) == {trace_id}

    mini_batches = wait_until(
        lambda: len(receiver.named("fanout.mini_batch")) >= 3 and receiver.named("fanout.mini_batch"),
        timeout=60,
        message="the agent's mini-batch spans at the OTLP receiver",
    )
    assert [(span.trace_id, span.service) for span in mini_batches] == [(trace_id, "fanout-agent")] * 3
