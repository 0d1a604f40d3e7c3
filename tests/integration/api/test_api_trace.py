"""One trace per run: the CLI's span, the API's spans and the run's stored context share a trace id,
and a mini-batch span continued from a work message built under that context joins the same trace."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.client import FanoutClient
from shared.host.server import ApiServer
from shared.runs import load_plan
from shared.runtime.messages import WorkMessage
from shared.storage import StorageClients
from shared.telemetry import attached_trace_context, inject_trace_context, start_span
from tests.integration.api.specs import SELF_CONTAINED


def test_submit_to_mini_batch_is_one_trace(
    spans: InMemorySpanExporter, server: ApiServer, storage: StorageClients
) -> None:
    with FanoutClient.connect(server.url, server.key) as client, start_span("fanout.cli.submit") as root:
        run_id = client.submit(SELF_CONTAINED, source="traced.yml")["run_id"]
    trace_id = root.get_span_context().trace_id

    by_name = {span.name: span for span in spans.get_finished_spans()}
    assert by_name["fanout.submit"].context.trace_id == trace_id  # the server joined the CLI's trace
    assert by_name["fanout.submit"].attributes["fanout.run_id"] == run_id
    plan = load_plan(storage, run_id)
    assert plan.trace["traceparent"].split("-")[1] == format(trace_id, "032x")

    # What the orchestration's activities do with the stored context: dispatch work messages under it;
    # an agent continues each message's context in its mini-batch span.
    with attached_trace_context(plan.trace):
        carrier = inject_trace_context()
    message = WorkMessage(run_id=run_id, job="count", start=0, end=1, **carrier)
    with start_span("fanout.mini_batch", carrier=message.trace_carrier()) as mini_batch:
        pass
    assert mini_batch.get_span_context().trace_id == trace_id
