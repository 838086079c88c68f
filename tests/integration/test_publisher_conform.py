"""The Kafka publisher passes the publisher suite its fake passes: every event is read back from
the session's own topics."""

from collections.abc import AsyncIterator

import pytest

from planstream.adapters.kafka import EventPublisher
from planstream.domain.events import Event
from planstream.domain.wire import decode_event
from planstream.settings import Settings
from tests.conformance.publisher import PublisherContract
from tests.stackkit import read_topic
from topics import TopicSpec


class _Kafka:
    def __init__(self, publisher: EventPublisher, settings: Settings) -> None:
        self.publisher = publisher
        self._settings = settings

    async def read_back(self, spec: TopicSpec, run_id: str) -> list[tuple[bytes, Event]]:
        assert spec.value_model is not None
        found: list[tuple[bytes, Event]] = []
        for record in await read_topic(self._settings, spec):
            event = decode_event(spec.value_model, record.value, self._settings.max_event_bytes)
            assert isinstance(event, Event) and record.key is not None
            if event.run_id == run_id:
                found.append((record.key, event))
        return found


@pytest.fixture(scope="module")
async def kafka(settings: Settings) -> AsyncIterator[_Kafka]:
    publisher = EventPublisher(settings, "ingress")
    await publisher.start()
    try:
        yield _Kafka(publisher, settings)
    finally:
        await publisher.stop()


class TestKafkaPublisher(PublisherContract):
    @pytest.fixture
    def harness(self, kafka: _Kafka) -> _Kafka:
        return kafka
