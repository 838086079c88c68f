"""Trace context in Kafka headers: injected, extracted, refused when malformed; spans per
handler, per batch and in the run's trace."""

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from planstream.adapters import tracing
from planstream.domain.events import Event
from planstream.settings import Settings
from tests.factories import make_step_requested
from tests.fakes.publisher import FakePublisher
from topics import STEP_REQUESTED, TopicSpec

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def finished() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (``configure``, once), with the spans it finishes kept."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        tracing.configure(Settings(), "unit", "unit-1")
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def _ids(value: bytes | str | None) -> str | None:
    text = value.decode() if isinstance(value, bytes) else value
    return tracing.trace_id_of(text)


def _last(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    return [span for span in exporter.get_finished_spans() if span.name == name][-1]


def test_no_headers_outside_a_span(finished: InMemorySpanExporter) -> None:
    assert tracing.kafka_headers() == []
    assert tracing.traceparent() is None


def test_the_current_context_goes_into_headers_and_comes_back(
    finished: InMemorySpanExporter,
) -> None:
    with tracing.tracer().start_as_current_span("publish") as span:
        headers = tracing.kafka_headers()
        sent = span.get_span_context()
    assert [key for key, _ in headers] == ["traceparent"]
    received = trace.get_current_span(tracing.context_of(headers)).get_span_context()
    assert (received.trace_id, received.span_id) == (sent.trace_id, sent.span_id)
    assert received.is_remote
    assert _ids(headers[0][1]) == tracing.trace_id_in(headers) == f"{sent.trace_id:032x}"
    # A mapping of headers (Faust's own form) reads the same.
    mapped = trace.get_current_span(tracing.context_of(dict(headers))).get_span_context()
    assert mapped.trace_id == sent.trace_id


@pytest.mark.parametrize(
    "headers",
    [
        None,
        [],
        [("traceparent", b"not a traceparent")],
        [("traceparent", b"00-Zf7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")],
        [("traceparent", PARENT.encode("utf-16"))],  # not ASCII
        [("traceparent", (PARENT + " " * 600).encode())],  # over the size cap
        [("traceparent", b"\xff\xfe")],
        [("traceparent", f"00-{'0' * 32}-b7ad6b7169203331-01".encode())],  # the invalid id
        [("x-other", PARENT.encode())],  # only the W3C header names count
    ],
)
def test_malformed_headers_give_an_empty_context(headers: tracing.Headers) -> None:
    context = trace.get_current_span(tracing.context_of(headers)).get_span_context()
    assert not context.is_valid
    assert tracing.trace_id_in(headers) is None


@pytest.mark.parametrize(
    ("value", "trace_id"),
    [
        (PARENT, TRACE),
        (None, None),
        ("", None),
        (f"01-{TRACE}-b7ad6b7169203331-01", None),
        (f"00-{TRACE}-b7ad6b7169203331", None),
        (f"00-{TRACE.upper()}-b7ad6b7169203331-01", None),
    ],
)
def test_trace_id_of(value: str | None, trace_id: str | None) -> None:
    assert tracing.trace_id_of(value) == trace_id


async def test_a_handler_is_a_span_continuing_the_event_trace(
    finished: InMemorySpanExporter,
) -> None:
    seen: list[tuple[str, bytes]] = []

    async def handle() -> str:
        seen.extend(tracing.kafka_headers())  # what a publish inside would send
        return "done"

    traced = tracing.handler(
        handle, "image_io StepRequested", [("traceparent", PARENT.encode())], {}
    )
    assert await traced() == "done"
    span = _last(finished, "image_io StepRequested")
    assert f"{span.context.trace_id:032x}" == TRACE
    assert span.parent is not None and f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
    assert span.kind == trace.SpanKind.CONSUMER
    assert _ids(dict(seen)["traceparent"]) == TRACE


async def test_a_failing_handler_records_the_error_and_raises_it(
    finished: InMemorySpanExporter,
) -> None:
    async def handle() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await tracing.handler(handle, "failing", None, {})()
    span = _last(finished, "failing")
    assert span.status.status_code == trace.StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_a_run_span_joins_the_run_trace_and_links_the_request(
    finished: InMemorySpanExporter,
) -> None:
    with (
        tracing.tracer().start_as_current_span("POST /v1/runs/{run_id}/steps/{step_id}") as http,
        tracing.run_span(PARENT, "ingress publish", {}),
    ):
        headers = tracing.kafka_headers()
    span = _last(finished, "ingress publish")
    assert _ids(dict(headers)["traceparent"]) == TRACE
    assert f"{span.context.trace_id:032x}" == TRACE
    assert [link.context.span_id for link in span.links] == [http.get_span_context().span_id]


@pytest.mark.parametrize("stored", [None, "garbage"])
def test_without_a_stored_trace_a_run_span_is_a_child_of_the_current_one(
    finished: InMemorySpanExporter, stored: str | None
) -> None:
    with (
        tracing.tracer().start_as_current_span("request") as outer,
        tracing.run_span(stored, "publish without a run trace", {}),
    ):
        pass
    span = _last(finished, "publish without a run trace")
    assert span.context.trace_id == outer.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == outer.get_span_context().span_id
    assert not span.links


class _Recording(FakePublisher):
    """Keeps the headers each publish would send."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict[str, bytes]] = []

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        self.headers.append(dict(tracing.kafka_headers()))
        await super().publish(spec, event)


async def test_the_run_trace_publisher_publishes_in_the_run_trace(
    finished: InMemorySpanExporter,
) -> None:
    inner = _Recording()
    asked: list[str] = []

    async def stored(run_id: str) -> str | None:
        asked.append(run_id)
        return PARENT

    event = make_step_requested()
    await tracing.RunTracePublisher(inner, stored, "sweeper").publish(STEP_REQUESTED, event)
    assert asked == [event.run_id]
    assert [_ids(headers["traceparent"]) for headers in inner.headers] == [TRACE]
    assert [p.event for p in inner.published] == [event]
    span = _last(finished, f"sweeper publish {STEP_REQUESTED.name}")
    assert span.attributes is not None and span.attributes["planstream.run_id"] == event.run_id


def test_a_batch_span_links_each_record_trace(finished: InMemorySpanExporter) -> None:
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    each: list[tracing.Headers] = [
        [("traceparent", PARENT.encode())],
        None,
        [("traceparent", other.encode())],
    ]
    with tracing.batch_span("decisions_sink write", each):
        pass
    span = _last(finished, "decisions_sink write")
    assert [f"{link.context.trace_id:032x}" for link in span.links] == [TRACE, "1" * 32]
    assert span.attributes is not None
    assert span.attributes["messaging.batch.message_count"] == 3
