"""The benchmark's own Kafka clients: a producer like planstream's, arrival clocks, topic reads.

The producer has the settings Faust gives planstream's (acks=all, the same linger) so that the
inputs of planstream and of its raw baselines are produced the same way.
"""

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from planstream.adapters.kafka import read_all
from planstream.adapters.kafka.security import client_options
from planstream.settings import Settings

__all__ = ["Arrivals", "create_topics", "new_producer", "read_messages", "send_all", "send_paced"]

Message = tuple[bytes, bytes]


def new_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings),
        acks="all",
        linger_ms=settings.producer_linger_ms,
        request_timeout_ms=30_000,
    )


async def create_topics(settings: Settings, names: Sequence[str]) -> None:
    """Topics with planstream's partition count and replication (existing ones are kept)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        new = [
            NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
            for name in names
        ]
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
    finally:
        await admin.close()


async def send_all(producer: AIOKafkaProducer, topic: str, messages: Sequence[Message]) -> float:
    """Send every (key, value) without waiting in between; the clock when the first went out."""
    started = time.monotonic()
    pending = [await producer.send(topic, value, key=key) for key, value in messages]
    await asyncio.gather(*pending)
    return started


async def send_paced(
    producer: AIOKafkaProducer, topic: str, messages: Sequence[Message], per_second: float
) -> dict[bytes, float]:
    """Send at a steady rate; when each key was sent (monotonic clock)."""
    sent: dict[bytes, float] = {}
    pending = []
    began = time.monotonic()
    for index, (key, value) in enumerate(messages):
        delay = began + index / per_second - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[key] = time.monotonic()
        pending.append(await producer.send(topic, value, key=key))
    await asyncio.gather(*pending)
    return sent


class Arrivals:
    """When each key arrived on some topics, read from their end by an unassigned consumer."""

    def __init__(self, settings: Settings, topics: Sequence[str]) -> None:
        self._settings = settings
        self._topics = list(topics)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.times: dict[bytes, list[float]] = defaultdict(list)
        self._changed = asyncio.Event()

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in range(self._settings.topic_partitions)
        ]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)  # resolve now, before anything is sent
        self._consumer = consumer
        self._task = asyncio.create_task(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    self.times[record.key or b""].append(now)
            if batch:
                self._changed.set()

    async def wait_for(self, keys: Sequence[bytes], timeout_s: float) -> float:
        """Wait until every key arrived at least once; the clock of the last first arrival."""
        deadline = time.monotonic() + timeout_s
        missing = [key for key in keys if key not in self.times]
        while missing:
            if self._task is not None and self._task.done():
                self._task.result()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(missing)} of {len(keys)} keys did not arrive")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(left, 1.0))
            missing = [key for key in missing if key not in self.times]
        return max(self.times[key][0] for key in keys)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


async def read_messages(settings: Settings, topic: str) -> list[Message]:
    """Every (key, value) now on ``topic``, from its first offset."""
    return [(r.key or b"", r.value or b"") for r in await read_all(settings, topic)]
