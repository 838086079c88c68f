"""Spans leave the process by OTLP over HTTP when an endpoint is set: a real process configured
by ``tracing.configure`` sends its spans to a collector (here a small OTLP/HTTP receiver)."""

import asyncio
import sys
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from planstream.dev.isolation import free_port

_PROBE = """
import sys
from planstream.adapters import tracing
from planstream.settings import Settings
settings = Settings(otel_exporter_otlp_endpoint=sys.argv[1])
tracing.configure(settings, "probe", "probe-1")
with tracing.tracer().start_as_current_span("probe handle"):
    with tracing.model_span("chat", "a-model", {"planstream.schema": "spaces_v1"}) as span:
        tracing.record_usage(span, 10, 20, "stop")
"""


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP receiver on a loopback port: its base URL and the requests it got."""
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        received.append(export)
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", received
    await runner.cleanup()


async def test_a_process_exports_its_spans_to_the_configured_collector(
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    url, received = collector
    probe = await asyncio.create_subprocess_exec(sys.executable, "-c", _PROBE, url)
    assert await asyncio.wait_for(probe.wait(), timeout=60) == 0  # spans are flushed at exit
    spans = {
        span.name: (resource.resource, span)
        for export in received
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert set(spans) == {"probe handle", "chat a-model"}
    resource, model = spans["chat a-model"]
    identity = {a.key: a.value.string_value for a in resource.attributes}
    assert identity["service.name"] == "planstream-probe"
    assert identity["service.instance.id"] == "probe-1"
    attributes = {a.key: a.value for a in model.attributes}
    assert attributes["gen_ai.request.model"].string_value == "a-model"
    assert attributes["gen_ai.usage.output_tokens"].int_value == 20
    assert model.parent_span_id == spans["probe handle"][1].span_id
