"""Plain aiokafka producers for the processes that are no Faust workers (the ingress, the
sweeper, the decisions sink): every send acknowledged by the in-sync replicas."""

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from planstream.adapters.kafka.security import check_access, client_options
from planstream.adapters.tracing import kafka_headers
from planstream.domain.errors import EventRejected, RetryableError
from planstream.domain.events import Event
from planstream.domain.wire import encode_event
from planstream.services import metrics
from planstream.settings import Settings
from topics import TopicSpec

__all__ = ["EventPublisher", "acknowledged_producer"]


def acknowledged_producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """A producer whose sends are acknowledged by every in-sync replica, without duplicates."""
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
        **options,
    )


class EventPublisher:
    """A plain aiokafka producer for processes that are not Faust workers (the ingress, the
    sweeper); ``service`` labels the events it counts as published."""

    def __init__(self, settings: Settings, service: str) -> None:
        self._settings = settings
        self._service = service
        self._producer = acknowledged_producer(settings, linger_ms=settings.producer_linger_ms)

    async def start(self) -> None:
        try:
            await self._producer.start()
        except KafkaConnectionError:
            await self._producer.stop()
            await check_access(self._settings)  # a refused login is named, not "Unable to …"
            raise

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        """Send one event keyed by its run id and wait for the broker's acknowledgement."""
        if spec.value_model is None or not isinstance(event, spec.value_model):
            raise EventRejected(f"{type(event).__name__} does not belong on {spec.name}")
        data = encode_event(event, self._settings.max_event_bytes)
        try:
            await self._producer.send_and_wait(
                spec.full_name(self._settings.topic_namespace),
                data,
                key=event.run_id.encode(),
                headers=kafka_headers(),  # the caller's trace context (its run's, see tracing)
            )
        except KafkaError as exc:
            raise RetryableError(f"Kafka did not take the event: {type(exc).__name__}") from exc
        metrics.count_published(self._service, spec.name, len(data))
