"""Trace context from dispatch to each mini-batch's span, and the runtime's metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shared.plan import RetrySettings
from shared.runtime import attempts, phases
from shared.storage import StorageClients, work_queue_name
from shared.telemetry import FanoutMetrics
from tests.integration.runtime.stepkit import make_step

SCRIPT = """
from pathlib import Path
def run(mini_batch):
    if "item 2" in Path(mini_batch[0]).read_text():
        raise ValueError("bad")
    return mini_batch
"""


def _metrics(provider: MeterProvider) -> FanoutMetrics:
    meter = provider.get_meter("test")
    return FanoutMetrics(
        mini_batches_completed=meter.create_counter("fanout.mini_batches.completed"),
        mini_batches_failed=meter.create_counter("fanout.mini_batches.failed"),
        items_processed=meter.create_counter("fanout.items.processed"),
        items_failed=meter.create_counter("fanout.items.failed"),
        run_duration=meter.create_histogram("fanout.run.duration"),
    )


def test_each_mini_batch_span_continues_the_runs_trace(
    storage: StorageClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    monkeypatch.setattr(attempts, "tracer", tracer_provider.get_tracer("test"))
    reader = InMemoryMetricReader()
    metrics = _metrics(MeterProvider(metric_readers=[reader]))
    monkeypatch.setattr("shared.runtime.settle.fanout_metrics", lambda: metrics)
    monkeypatch.setattr("shared.runtime.tries.fanout_metrics", lambda: metrics)

    step = make_step(storage, tmp_path, SCRIPT, files=3, dispatch=False, retry=RetrySettings(max_retries=0))
    with tracer_provider.get_tracer("test").start_as_current_span("the run") as root:
        phases.dispatch_step(storage, step.ref)
    message = next(iter(storage.queue_client(work_queue_name(step.ref.run_id, step.ref.job)).peek_messages()))
    assert json.loads(message.content)["traceparent"].split("-")[1] == format(
        root.get_span_context().trace_id, "032x"
    )

    assert step.run_agent(workers=1) == 0
    batches = [s for s in spans.get_finished_spans() if s.name == "fanout.mini_batch"]
    assert len(batches) == 3
    for span in batches:
        assert span.context.trace_id == root.get_span_context().trace_id
        assert span.parent is not None
        assert span.parent.span_id == root.get_span_context().span_id
    by_index = {s.attributes["fanout.mini_batch.index"]: s for s in batches}
    assert by_index[2].status.status_code is StatusCode.ERROR
    assert by_index[0].attributes["fanout.mini_batch.status"] == "succeeded"
    assert by_index[0].attributes["fanout.run_id"] == step.ref.run_id

    data = reader.get_metrics_data()
    points = {
        metric.name: sum(getattr(p, "value", getattr(p, "count", 0)) for p in metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    assert points["fanout.mini_batches.completed"] == 2
    assert points["fanout.mini_batches.failed"] == 1
    assert points["fanout.items.processed"] == 2
    assert points["fanout.items.failed"] == 1
    assert points["fanout.run.duration"] == 3  # one run() per mini-batch
