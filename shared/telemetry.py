"""OpenTelemetry for Fanout: exporter set-up for entry points, and trace-context helpers for everyone.

One run is one trace: ``fanout submit`` (or the HTTP API, or a spec blob) opens the root span and
stores its W3C trace context with the run; the orchestration passes it on in activity inputs; the
executor hands it to the agents; the agent puts it into every work-queue message, and each mini-batch's
span is a child of it. Everything that crosses a process boundary carries the context as a small
``dict[str, str]`` (a *carrier*: ``{"traceparent": "00-…", "tracestate": "…"}``):

- :func:`inject_trace_context` writes the current context into a carrier (a queue message, an
  orchestration input, a run's index row);
- :func:`extract_trace_context` / :func:`attached_trace_context` read it back on the other side;
- :func:`start_span` opens a span as a child of a carrier (or of the current span).

Library modules only use the OpenTelemetry *API* (``trace.get_tracer(__name__)``,
:func:`fanout_metrics`); only entry points call :func:`configure_telemetry` — the CLI commands that start
runs (``fanout run`` opens the run's root span, ``fanout submit`` the submission's), the agent, the
local host, and the Function App on its first invocation. Which exporter is used comes from the
``telemetry`` setting; unset, it is Azure Monitor when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set,
OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, and none otherwise (spans are then not recorded and
cost nothing, but incoming trace contexts are still passed on).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.propagate import extract, inject

from shared.settings import Settings, TelemetryExporter

logger = logging.getLogger(__name__)

#: The carrier of a W3C trace context: ``traceparent`` (and ``tracestate`` when there is one).
TraceCarrier = dict[str, str]

#: Keys a carrier may hold (W3C Trace Context + Baggage); anything else is dropped on extraction.
CARRIER_KEYS = ("traceparent", "tracestate", "baggage")

METER_NAME = "fanout"
#: ``service.name`` of the CLI commands that start runs (``fanout run``, ``fanout submit``).
CLI_SERVICE_NAME = "fanout-cli"

_configure_lock = threading.Lock()
_configured: TelemetryHandle | None = None


@dataclass(frozen=True)
class TelemetryHandle:
    """What :func:`configure_telemetry` set up; :meth:`shutdown` flushes and stops the exporters."""

    exporter: TelemetryExporter
    service_name: str
    tracer_provider: Any = None
    meter_provider: Any = None

    def shutdown(self) -> None:
        """Flush pending spans and metrics (call before a short-lived process exits)."""
        for provider in (self.tracer_provider, self.meter_provider):
            if provider is not None:
                with contextlib.suppress(Exception):  # a dead collector must not break the exit
                    provider.shutdown()


def resolve_exporter(settings: Settings) -> TelemetryExporter:
    """The exporter to use: the ``telemetry`` setting, else what the environment makes available."""
    if settings.telemetry is not None:
        return settings.telemetry
    if settings.applicationinsights_connection_string:
        return TelemetryExporter.AZURE_MONITOR
    if settings.otel_exporter_otlp_endpoint:
        return TelemetryExporter.OTLP
    return TelemetryExporter.NONE


def configure_telemetry(settings: Settings, service_name: str) -> TelemetryHandle:
    """Install the process's tracer and meter providers once; later calls return the first handle.

    Args:
        settings: the process's settings (``telemetry``, ``APPLICATIONINSIGHTS_CONNECTION_STRING``,
            ``OTEL_EXPORTER_OTLP_ENDPOINT``).
        service_name: ``service.name`` of the resource, e.g. ``fanout-cli``, ``fanout-agent``,
            ``fanout-functions``, ``fanout-serve``.

    Returns:
        The handle of what was configured (``exporter`` is ``none`` when nothing is exported).

    Raises:
        ConfigurationError: ``telemetry=azure_monitor`` without a connection string.
    """
    global _configured  # noqa: PLW0603 - one provider per process is OpenTelemetry's own model
    with _configure_lock:
        if _configured is not None:
            return _configured
        exporter = resolve_exporter(settings)
        if exporter is TelemetryExporter.NONE:
            _configured = TelemetryHandle(exporter, service_name)
            return _configured
        span_exporter, metric_exporter = _exporters(exporter, settings)

        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({SERVICE_NAME: service_name})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        meter_provider = MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(metric_exporter)]
        )
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _configured = TelemetryHandle(exporter, service_name, tracer_provider, meter_provider)
        logger.info("telemetry: exporting traces and metrics with %s as %s", exporter.value, service_name)
        return _configured


def _exporters(exporter: TelemetryExporter, settings: Settings) -> tuple[Any, Any]:
    """The span and metric exporters for ``exporter`` (imported only when chosen)."""
    if exporter is TelemetryExporter.CONSOLE:
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # stderr: stdout belongs to the command's own output (JSON for scripts).
        return ConsoleSpanExporter(out=sys.stderr), ConsoleMetricExporter(out=sys.stderr)
    if exporter is TelemetryExporter.OTLP:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Both read OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* variables) themselves.
        return OTLPSpanExporter(), OTLPMetricExporter()
    from shared.errors import ConfigurationError

    connection_string = settings.applicationinsights_connection_string
    if not connection_string:
        raise ConfigurationError(
            "FANOUT_TELEMETRY=azure_monitor needs APPLICATIONINSIGHTS_CONNECTION_STRING",
            setting="telemetry",
        )
    from azure.monitor.opentelemetry.exporter import (
        AzureMonitorMetricExporter,
        AzureMonitorTraceExporter,
    )

    return (
        AzureMonitorTraceExporter(connection_string=connection_string),
        AzureMonitorMetricExporter(connection_string=connection_string),
    )


# --- trace context across process boundaries -----------------------------------------------------


def inject_trace_context(
    carrier: dict[str, str] | None = None, context: Context | None = None
) -> TraceCarrier:
    """Write the current (or the given) trace context into ``carrier`` and return it.

    The result is ``{}`` when there is no active span — store it anyway; extraction accepts it.
    """
    target: dict[str, str] = {} if carrier is None else carrier
    inject(target, context=context)
    return target


def extract_trace_context(carrier: Mapping[str, Any] | None) -> Context:
    """The trace context stored in ``carrier`` (``None``, ``{}`` or junk give an empty context)."""
    clean = {
        key: value for key, value in (carrier or {}).items() if key in CARRIER_KEYS and isinstance(value, str)
    }
    return extract(clean)


@contextlib.contextmanager
def attached_trace_context(carrier: Mapping[str, Any] | None) -> Iterator[Context]:
    """Make the carrier's context current for the block (spans opened inside become its children)."""
    context = extract_trace_context(carrier)
    token = otel_context.attach(context)
    try:
        yield context
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def start_span(
    name: str,
    *,
    carrier: Mapping[str, Any] | None = None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    tracer_name: str = "fanout",
) -> Iterator[trace.Span]:
    """Open a span, as a child of ``carrier``'s context when one is given, else of the current span.

    Example::

        with start_span("mini_batch", carrier=message.trace, attributes={"fanout.run_id": run_id}):
            ...
    """
    parent = extract_trace_context(carrier) if carrier else None
    tracer = trace.get_tracer(tracer_name)
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes) as span:
        yield span


def current_trace_id() -> str | None:
    """The current trace id as 32 hex digits, or None outside a recorded span (for logs and answers)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x")


# --- metrics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FanoutMetrics:
    """Fanout's instruments, created once on the global meter; record with attributes such as
    ``{"fanout.run_id": ..., "fanout.job": ...}``."""

    mini_batches_completed: metrics.Counter
    mini_batches_failed: metrics.Counter
    items_processed: metrics.Counter
    items_failed: metrics.Counter
    run_duration: metrics.Histogram


@lru_cache(maxsize=1)
def fanout_metrics() -> FanoutMetrics:
    """The shared instruments (safe to call before :func:`configure_telemetry`: the API's proxy meter
    forwards to the real one once it is installed)."""
    meter = metrics.get_meter(METER_NAME)
    return FanoutMetrics(
        mini_batches_completed=meter.create_counter(
            "fanout.mini_batches.completed", unit="{mini_batch}", description="Mini-batches that succeeded."
        ),
        mini_batches_failed=meter.create_counter(
            "fanout.mini_batches.failed",
            unit="{mini_batch}",
            description="Mini-batches that failed (each final failure once).",
        ),
        items_processed=meter.create_counter(
            "fanout.items.processed", unit="{item}", description="Items (files or rows) run() succeeded on."
        ),
        items_failed=meter.create_counter(
            "fanout.items.failed", unit="{item}", description="Items (files or rows) run() failed on."
        ),
        run_duration=meter.create_histogram(
            "fanout.run.duration", unit="s", description="Duration of one run() call of an entry script."
        ),
    )
