"""Telemetry: exporter choice, one configuration per process, trace context across boundaries."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.errors import ConfigurationError
from shared.settings import Settings, TelemetryExporter
from shared.telemetry import (
    _exporters,
    attached_trace_context,
    current_trace_id,
    extract_trace_context,
    fanout_metrics,
    inject_trace_context,
    resolve_exporter,
    start_span,
)


def test_exporter_defaults_follow_the_environment() -> None:
    assert resolve_exporter(Settings()) is TelemetryExporter.NONE
    assert (
        resolve_exporter(Settings(APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=x"))
        is TelemetryExporter.AZURE_MONITOR
    )
    assert (
        resolve_exporter(Settings(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318"))
        is TelemetryExporter.OTLP
    )
    assert (
        resolve_exporter(Settings(telemetry="console", APPLICATIONINSIGHTS_CONNECTION_STRING="x"))
        is TelemetryExporter.CONSOLE
    )


def test_azure_monitor_without_connection_string_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="APPLICATIONINSIGHTS_CONNECTION_STRING"):
        _exporters(TelemetryExporter.AZURE_MONITOR, Settings(telemetry="azure_monitor"))


def test_each_exporter_kind_builds() -> None:
    settings = Settings(
        APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=00000000-0000-0000-0000-000000000000;"
        "IngestionEndpoint=http://127.0.0.1:9/"
    )
    for kind in (TelemetryExporter.CONSOLE, TelemetryExporter.OTLP, TelemetryExporter.AZURE_MONITOR):
        span_exporter, metric_exporter = _exporters(kind, settings)
        assert hasattr(span_exporter, "export")
        assert hasattr(metric_exporter, "export")


def test_configure_installs_providers_once_per_process() -> None:
    # A fresh interpreter: the global providers of OpenTelemetry can be set only once per process.
    script = """
import json, sys
from opentelemetry import trace
from shared.settings import Settings
from shared.telemetry import configure_telemetry, start_span, current_trace_id
first = configure_telemetry(Settings(telemetry="console"), "fanout-test")
second = configure_telemetry(Settings(telemetry="none"), "other")
with start_span("hello") as span:
    trace_id = current_trace_id()
first.shutdown()
print(json.dumps({"same": first is second, "exporter": second.exporter.value,
                  "provider": type(trace.get_tracer_provider()).__name__, "trace_id": trace_id}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["same"] is True
    assert answer["exporter"] == "console"
    assert answer["provider"] == "TracerProvider"
    assert len(answer["trace_id"]) == 32
    # The console exporter writes to stderr, never into the command's stdout.
    assert '"name": "hello"' in result.stderr
    assert "fanout-test" in result.stderr


def test_without_configuration_nothing_is_recorded() -> None:
    script = """
from shared.settings import Settings
from shared.telemetry import configure_telemetry, start_span, current_trace_id
handle = configure_telemetry(Settings(), "fanout-test")
with start_span("x"):
    print(handle.exporter.value, current_trace_id())
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["none", "None"]


def test_a_carrier_round_trip_keeps_one_trace(spans: InMemorySpanExporter) -> None:
    with start_span("submit") as root:
        carrier = inject_trace_context()
    assert carrier["traceparent"].startswith("00-")
    # The carrier travels as JSON (a queue message, an orchestration input) to another thread.
    wire = json.dumps({"trace": carrier})
    seen: list[str | None] = []

    def other_side() -> None:
        with start_span("activity", carrier=json.loads(wire)["trace"]):
            inner = inject_trace_context()
        with attached_trace_context(inner), start_span("mini_batch"):
            seen.append(current_trace_id())

    worker = threading.Thread(target=other_side)
    worker.start()
    worker.join()
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert set(finished) == {"submit", "activity", "mini_batch"}
    trace_ids = {span.context.trace_id for span in finished.values()}
    assert trace_ids == {root.get_span_context().trace_id}
    assert seen == [format(root.get_span_context().trace_id, "032x")]
    assert finished["activity"].parent is not None
    assert finished["activity"].parent.span_id == finished["submit"].context.span_id
    assert finished["mini_batch"].parent.span_id == finished["activity"].context.span_id


@pytest.mark.parametrize("carrier", [None, {}, {"traceparent": "garbage"}, {"other": "x", "traceparent": 5}])
def test_bad_or_empty_carriers_start_a_new_trace(spans: InMemorySpanExporter, carrier: object) -> None:
    assert not trace.get_current_span(extract_trace_context(carrier)).get_span_context().is_valid  # type: ignore[arg-type]
    with start_span("fresh", carrier=carrier):  # type: ignore[arg-type]
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None


def test_inject_without_a_span_gives_an_empty_carrier() -> None:
    assert inject_trace_context() == {}
    target = {"keep": "me"}
    assert inject_trace_context(target) is target


def test_metrics_instruments_are_shared() -> None:
    instruments = fanout_metrics()
    assert instruments is fanout_metrics()
    instruments.mini_batches_completed.add(1, {"fanout.job": "score"})
    instruments.run_duration.record(0.5)
