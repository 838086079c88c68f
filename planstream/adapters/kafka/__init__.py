"""Kafka: topic creation, the event codec, dead letters and plain producers for the processes
that are no Faust workers (the ingress, the decisions sink)."""

import logging
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord
from faust.serializers.codecs import Codec
from faust.types import AppT, Message
from pydantic import BaseModel

from planstream.domain.errors import ConfigurationError, EventRejected, RetryableError
from planstream.domain.events import Event
from planstream.domain.wire import decode_event, encode_event
from planstream.settings import Settings
from topics import CATALOGUE, DEAD_LETTER, TopicSpec

__all__ = [
    "DeadLetteringTopic",
    "DeadLetters",
    "EventCodec",
    "EventPublisher",
    "ProducerDeadLetters",
    "Refused",
    "dead_letter_headers",
    "ensure_topics",
    "read_all",
]

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, specs: Sequence[TopicSpec] = CATALOGUE) -> list[str]:
    """Create the missing catalogue topics; refuse existing ones with the wrong partition count."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=15_000
    )
    await admin.start()
    try:
        wanted = {spec.full_name(settings.topic_namespace): spec for spec in specs}
        existing = set(await admin.list_topics())
        present = [name for name in wanted if name in existing]
        for described in await admin.describe_topics(present) if present else []:
            count = len(described["partitions"])
            if count != settings.topic_partitions:
                raise ConfigurationError(
                    f"topic {described['topic']} has {count} partitions, expected "
                    f"{settings.topic_partitions}: a run's topics must be co-partitioned"
                )
        missing = [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=spec.broker_config(),
            )
            for name, spec in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("another process created the topics first")
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def read_all(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now on ``topic`` (all partitions, from the first offset), no group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*partitions, timeout_ms=1_000)
            for found in batch.values():
                records.extend(found)
        return records
    finally:
        await consumer.stop()


class EventCodec(Codec):
    """Faust codec for one event model: size-checked JSON both ways.

    A decode failure becomes faust's ValueDecodeError, which acks the message and hands it to
    the topic's ``on_value_decode_error`` (dead-lettered by DeadLetteringTopic), never a crash.
    """

    def __init__(self, model: type[BaseModel], max_bytes: int, **kwargs: Any) -> None:
        super().__init__(model=model, max_bytes=max_bytes, **kwargs)
        self.model = model
        self.max_bytes = max_bytes

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, self.model):
            raise EventRejected(f"expected {self.model.__name__}, got {type(obj).__name__}")
        return encode_event(obj, self.max_bytes)

    def _loads(self, data: bytes) -> BaseModel:
        return decode_event(self.model, data, self.max_bytes)


class Refused(Protocol):
    """What dead-lettering needs of a refused message: a Faust Message or an aiokafka record."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None: ...


def dead_letter_headers(
    message: Refused, error: BaseException, service: str, now: datetime
) -> list[tuple[str, bytes]]:
    """Where a message came from and why it was refused, as Kafka headers."""
    stack = "".join(traceback.format_exception(error))[-4_000:]
    pairs = {
        "error": str(error)[:1_000] or type(error).__name__,
        "error_class": type(error).__name__,
        "error_stack": stack,
        "source_topic": message.topic,
        "source_partition": str(message.partition),
        "source_offset": str(message.offset),
        "service": service,
        "attempts": "1",
        "dead_lettered_at": now.isoformat(),
    }
    given = message.headers or []
    pairs_given = given.items() if isinstance(given, Mapping) else given
    original = [(k, v) for k, v in pairs_given if not k.startswith("planstream-")]
    ours = ((f"planstream-{k.replace('_', '-')}", v.encode()) for k, v in pairs.items())
    return [*original, *ours]


def _logged(message: Refused, error: BaseException) -> None:
    log.warning(
        "dead-lettered a message",
        extra={
            "source_topic": message.topic,
            "source_partition": message.partition,
            "source_offset": message.offset,
            "error": str(error)[:300],
        },
    )


class DeadLetters:
    """Sends a refused message, byte for byte, to the dead-letter topic, the error in headers."""

    def __init__(self, app: AppT, settings: Settings, service: str) -> None:
        self._app = app
        self._topic = DEAD_LETTER.full_name(settings.topic_namespace)
        self._service = service

    async def send(self, message: Message, error: BaseException) -> None:
        headers = dead_letter_headers(message, error, self._service, datetime.now(UTC))
        await self._app.producer.send_and_wait(
            self._topic, message.key, message.value, None, None, headers
        )
        _logged(message, error)


class ProducerDeadLetters:
    """DeadLetters for a process that is no Faust worker: the same record and headers, sent
    through its own idempotent producer (started and stopped by the caller)."""

    def __init__(self, settings: Settings, service: str) -> None:
        self._topic = DEAD_LETTER.full_name(settings.topic_namespace)
        self._service = service
        self._producer = _acknowledged_producer(settings)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def send(self, message: Refused, error: BaseException) -> None:
        headers = dead_letter_headers(message, error, self._service, datetime.now(UTC))
        await self._producer.send_and_wait(self._topic, message.value, message.key, headers=headers)
        _logged(message, error)


def _acknowledged_producer(settings: Settings, **options: Any) -> AIOKafkaProducer:
    """A producer whose sends are acknowledged by every in-sync replica, without duplicates."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
        **options,
    )


class DeadLetteringTopic(faust.Topic):
    """A topic whose undecodable messages go to the dead-letter topic; the agent carries on."""

    def __init__(self, *args: Any, dead_letters: DeadLetters, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dead_letters = dead_letters

    def _clone_args(self) -> dict[str, Any]:
        return {**super()._clone_args(), "dead_letters": self.dead_letters}

    async def on_key_decode_error(self, exc: Exception, message: Message) -> None:
        await self.dead_letters.send(message, exc)

    async def on_value_decode_error(self, exc: Exception, message: Message) -> None:
        await self.dead_letters.send(message, exc)


class EventPublisher:
    """A plain aiokafka producer for processes that are not Faust workers (the ingress)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = _acknowledged_producer(settings, linger_ms=settings.producer_linger_ms)

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        """Send one event keyed by its run id and wait for the broker's acknowledgement."""
        if spec.value_model is None or not isinstance(event, spec.value_model):
            raise EventRejected(f"{type(event).__name__} does not belong on {spec.name}")
        data = encode_event(event, self._settings.max_event_bytes)
        try:
            await self._producer.send_and_wait(
                spec.full_name(self._settings.topic_namespace), data, key=event.run_id.encode()
            )
        except KafkaError as exc:
            raise RetryableError(f"Kafka did not take the event: {type(exc).__name__}") from exc
