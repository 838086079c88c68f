"""Traces: the W3C trace context in Kafka headers, a span per handler, per model call and per
publish outside a consumed event, all of one run in the run's trace.

``configure`` (each entry point calls it once) installs the OpenTelemetry SDK's tracer
provider. Spans always get real ids, so an event's ``traceparent`` header names its run's trace
and a log line carries ``trace_id``; they are exported by OTLP over HTTP only when
``otel_exporter_otlp_endpoint`` is set. Without it there is no span processor and no exporter:
a span costs a few microseconds and goes nowhere. A process that never called ``configure``
(an in-process test) gets the API's no-op tracer: no ids, no headers.

The run's trace is the one of the request that created the run (continuing the caller's
``traceparent`` header when it sent one); its ``traceparent`` is stored on the run, so the
ingress (a step request, a review) and the sweeper (a re-drive) publish inside it too,
``RunTracePublisher`` linking the span to the request's own trace.
"""

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from planstream.domain.events import Event, StepEvent
from planstream.ports import Publisher
from planstream.settings import Settings
from topics import TopicSpec

__all__ = [
    "TRACEPARENT",
    "Headers",
    "RunTracePublisher",
    "batch_span",
    "configure",
    "context_of",
    "event_attributes",
    "handler",
    "kafka_headers",
    "model_span",
    "record_usage",
    "run_span",
    "server_span",
    "trace_id_in",
    "trace_id_of",
    "traceparent",
    "tracer",
]

TRACEPARENT: Final = "traceparent"
_TRACE_HEADERS: Final = (TRACEPARENT, "tracestate")
_MAX_HEADER_CHARS: Final = 512  # a W3C traceparent is 55; tracestate at most 512
_TRACEPARENT_SHAPE: Final = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_PROPAGATOR: Final = TraceContextTextMapPropagator()
_MAX_LINKS: Final = 128  # the SDK's default limit of links per span

log = logging.getLogger(__name__)
T = TypeVar("T")
Attributes = Mapping[str, str | int | float | bool]
Headers = Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None


def configure(settings: Settings, service: str, instance: str) -> None:
    """Install the tracer provider of this process (its spans are flushed at exit)."""
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.namespace": "planstream",
                "service.name": f"planstream-{service}",
                "service.instance.id": instance,
            }
        )
    )
    endpoint = settings.otel_exporter_otlp_endpoint
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        url = endpoint.rstrip("/")
        url = url if url.endswith("/v1/traces") else f"{url}/v1/traces"
        exporter = OTLPSpanExporter(endpoint=url, timeout=settings.otel_export_timeout_s)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info("traces are exported by OTLP to %s", url)
    trace.set_tracer_provider(provider)


def tracer() -> trace.Tracer:
    return trace.get_tracer("planstream")


# --- the context in headers ------------------------------------------------------------------


def kafka_headers(context: otel_context.Context | None = None) -> list[tuple[str, bytes]]:
    """The current (or given) trace context as Kafka headers; none outside a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    return [(key, value.encode("ascii")) for key, value in carrier.items()]


def context_of(headers: Headers) -> otel_context.Context:
    """The trace context Kafka ``headers`` carry; an empty one for anything malformed (headers
    are input like any other: a bad one starts a new trace, it never fails the event)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    carrier: dict[str, str] = {}
    for key, value in pairs:
        if key in _TRACE_HEADERS and isinstance(value, bytes) and len(value) <= _MAX_HEADER_CHARS:
            with contextlib.suppress(UnicodeDecodeError):
                carrier[key] = value.decode("ascii")
    return _PROPAGATOR.extract(carrier)


def trace_id_in(headers: Headers) -> str | None:
    """The trace id Kafka ``headers`` carry (None without a valid one)."""
    span_context = trace.get_current_span(context_of(headers)).get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


def traceparent(context: otel_context.Context | None = None) -> str | None:
    """The current (or given) context as a W3C ``traceparent`` value; None outside a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context)
    return carrier.get(TRACEPARENT)


def trace_id_of(value: str | None) -> str | None:
    """The trace id a ``traceparent`` value names (None for no value or a malformed one)."""
    found = _TRACEPARENT_SHAPE.fullmatch(value or "")
    return found.group(1) if found else None


# --- spans -----------------------------------------------------------------------------------


def event_attributes(event: Event) -> dict[str, str | int]:
    """What a span says about the event it handles or publishes."""
    attributes: dict[str, str | int] = {
        "planstream.run_id": event.run_id,
        "planstream.event": type(event).__name__,
        "planstream.event_id": event.event_id,
    }
    if isinstance(event, StepEvent):
        attributes["planstream.step_id"] = event.step_id
        attributes["planstream.attempt"] = event.attempt
    return attributes


def handler(
    call: Callable[[], Awaitable[T]], name: str, headers: Headers, attributes: Attributes
) -> Callable[[], Awaitable[T]]:
    """``call`` run inside a consumer span whose parent is the context ``headers`` carry: each
    try of a handler is one span, and what it publishes carries that span's context."""

    async def traced() -> T:
        with tracer().start_as_current_span(
            name, context=context_of(headers), kind=SpanKind.CONSUMER, attributes=attributes
        ):
            return await call()

    return traced


@contextlib.contextmanager
def server_span(name: str, headers: Mapping[str, str], attributes: Attributes) -> Iterator[Span]:
    """A server span for one HTTP request, continuing the caller's ``traceparent`` if sent."""
    carrier = {
        key: value
        for key in _TRACE_HEADERS
        if (value := headers.get(key)) is not None and len(value) <= _MAX_HEADER_CHARS
    }
    with tracer().start_as_current_span(
        name, context=_PROPAGATOR.extract(carrier), kind=SpanKind.SERVER, attributes=attributes
    ) as span:
        yield span


@contextlib.contextmanager
def run_span(run_traceparent: str | None, name: str, attributes: Attributes) -> Iterator[Span]:
    """A span in the run's trace (whose ``traceparent`` the run keeps), linked to the current
    span when that one belongs to another trace (the HTTP request's, say). Without a stored
    context (a run made before traces were kept) the span is a child of the current one."""
    current = trace.get_current_span().get_span_context()
    run = trace.get_current_span(_PROPAGATOR.extract({TRACEPARENT: run_traceparent or ""}))
    run_context = run.get_span_context()
    if not run_context.is_valid or run_context.trace_id == current.trace_id:
        with tracer().start_as_current_span(name, attributes=attributes) as span:
            yield span
        return
    links = [Link(current)] if current.is_valid else []
    parent = trace.set_span_in_context(run)
    with tracer().start_as_current_span(
        name, context=parent, links=links, kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span


@contextlib.contextmanager
def model_span(operation: str, model: str, attributes: Attributes) -> Iterator[Span]:
    """A client span for one model call; a failure names its kind (``timeout``, ``throttled``,
    ``refused``...) in ``error.type``."""
    with tracer().start_as_current_span(
        f"{operation} {model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": model,
            **attributes,
        },
    ) as span:
        try:
            yield span
        except Exception as exc:
            span.set_attribute("error.type", str(getattr(exc, "outcome", type(exc).__name__)))
            raise


def record_usage(span: Span, input_tokens: int, output_tokens: int, finish: str | None) -> None:
    """What the model says the call cost, on its span."""
    span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
    if finish:
        span.set_attribute("gen_ai.response.finish_reasons", [finish])


@contextlib.contextmanager
def batch_span(name: str, each: Sequence[Headers]) -> Iterator[Span]:
    """A consumer span for a batch of records, linked to the trace of each (up to the span's
    link limit): a batch has no one parent."""
    links: list[Link] = []
    for headers in each:
        span_context = trace.get_current_span(context_of(headers)).get_span_context()
        if span_context.is_valid and len(links) < _MAX_LINKS:
            links.append(Link(span_context))
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.batch.message_count": len(each),
    }
    with tracer().start_as_current_span(
        name, kind=SpanKind.CONSUMER, links=links, attributes=attributes
    ) as span:
        yield span


class RunTracePublisher:
    """Publishes every event inside its run's trace, whatever the caller's context: for the
    processes that publish outside a consumed event (the ingress, the sweeper)."""

    def __init__(
        self,
        inner: Publisher,
        traceparent_of: Callable[[str], Awaitable[str | None]],
        service: str,
    ) -> None:
        self._inner = inner
        self._traceparent_of = traceparent_of
        self._service = service

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        await self._publish_in(await self._traceparent_of(event.run_id), spec, event)

    async def bound(self, run_id: str) -> Publisher:
        """A publisher for ``run_id``'s events whose trace is read now, not at publish time: for a
        publish made inside a database transaction, which must not wait for a second pooled
        connection (with the pool exhausted, that wait never ends)."""
        stored = await self._traceparent_of(run_id)
        parent = self

        class _Bound:
            async def publish(self, spec: TopicSpec, event: Event) -> None:
                await parent._publish_in(stored, spec, event)

        return _Bound()

    async def _publish_in(self, stored: str | None, spec: TopicSpec, event: Event) -> None:
        attributes: dict[str, Any] = {
            **event_attributes(event),
            "messaging.system": "kafka",
            "messaging.destination.name": spec.name,
        }
        with run_span(stored, f"{self._service} publish {spec.name}", attributes):
            await self._inner.publish(spec, event)
