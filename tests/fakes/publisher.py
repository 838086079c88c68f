"""A publisher that keeps what was published, per topic, after the checks the real one makes."""

from dataclasses import dataclass
from typing import TypeVar

from planstream.domain.errors import EventRejected, PlanstreamError
from planstream.domain.events import Event
from planstream.domain.wire import decode_event, encode_event
from topics import TopicSpec

__all__ = ["FakePublisher", "Published"]

E = TypeVar("E", bound=Event)


@dataclass(frozen=True)
class Published:
    """One message as the broker would hold it: topic, key, and the event read back."""

    topic: str
    key: bytes
    event: Event


class FakePublisher:
    """``EventPublisher`` in memory: the same refusals, the same key, the same encoding."""

    def __init__(self, max_event_bytes: int = 50_000) -> None:
        self._max_bytes = max_event_bytes
        self.published: list[Published] = []
        self._failures: list[PlanstreamError] = []

    async def start(self) -> None:
        """Nothing to open."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        """Keep one event keyed by its run id, once it has been encoded as Kafka would get it."""
        if spec.value_model is None or not isinstance(event, spec.value_model):
            raise EventRejected(f"{type(event).__name__} does not belong on {spec.name}")
        data = encode_event(event, self._max_bytes)
        if self._failures:
            raise self._failures.pop(0)
        read_back = decode_event(spec.value_model, data, self._max_bytes)
        assert isinstance(read_back, Event)
        self.published.append(Published(spec.name, event.run_id.encode(), read_back))

    def fail_next(self, error: PlanstreamError) -> None:
        """The next publish raises ``error`` (a RetryableError is Kafka not taking it)."""
        self._failures.append(error)

    def events(self, spec: TopicSpec) -> list[Event]:
        """Every event published to ``spec``, in order."""
        return [p.event for p in self.published if p.topic == spec.name]

    def only(self, spec: TopicSpec, kind: type[E]) -> E:
        """The one event published to ``spec``; AssertionError unless exactly one."""
        found = self.events(spec)
        assert len(found) == 1, f"expected one event on {spec.name}, got {len(found)}"
        event = found[0]
        assert isinstance(event, kind), f"{type(event).__name__} is not {kind.__name__}"
        return event

    def topics(self) -> list[str]:
        """The topic of every publish, in order."""
        return [p.topic for p in self.published]
