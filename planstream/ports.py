"""The seams between the core services and the outside world, as Protocols."""

from typing import Protocol

from planstream.domain.events import Event
from topics import TopicSpec

__all__ = ["Publisher"]


class Publisher(Protocol):
    """Sends one event to a catalogue topic, keyed by its run id, and waits for the broker."""

    async def publish(self, spec: TopicSpec, event: Event) -> None: ...
