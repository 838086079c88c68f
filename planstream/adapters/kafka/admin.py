"""Kafka administration: create the catalogue's topics and the workers' changelogs, read a
topic whole (no group)."""

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from aiokafka.structs import ConsumerRecord

from planstream.adapters.kafka.security import check_access, client_options
from planstream.domain.errors import ConfigurationError
from planstream.settings import Settings
from topics import CATALOGUE, TopicSpec

__all__ = ["ensure_changelogs", "ensure_topics", "read_all"]

log = logging.getLogger(__name__)

VISIBLE_WITHIN_S: Final = 60.0
"""How long created topics may take to appear, with their leaders, in the broker's metadata."""


async def ensure_topics(settings: Settings, specs: Sequence[TopicSpec] = CATALOGUE) -> list[str]:
    """Create the missing catalogue topics; refuse existing ones with the wrong partition count."""
    names = {spec.full_name(settings.topic_namespace): spec.broker_config() for spec in specs}
    return await _ensure(settings, names)


async def ensure_changelogs(settings: Settings, names: Sequence[str]) -> list[str]:
    """Create a worker's table changelogs (compacted, co-partitioned with the catalogue) before
    the worker starts.

    Faust creates them itself when it starts, but the group's first assignment can then run
    before the new topic is in the consumer's metadata: the table is assigned no changelog
    partition, and every mark written fails (``PartitionsMismatch``) until the next metadata
    refresh, up to five minutes later (F15 in docs/reliability.md)."""
    return await _ensure(settings, {name: {"cleanup.policy": "compact"} for name in names})


async def _ensure(settings: Settings, wanted: dict[str, dict[str, str]]) -> list[str]:
    """Create the missing topics of ``wanted`` (name: broker config) with the catalogue's
    partition count, and return once the broker's metadata has every one of them with a leader
    for each partition; refuse a topic with another partition count."""
    admin = AIOKafkaAdminClient(**client_options(settings), request_timeout_ms=15_000)
    try:
        await admin.start()
    except KafkaConnectionError:
        await admin.close()
        await check_access(settings)  # a refused login is named, not "Unable to bootstrap"
        raise
    try:
        existing = set(await admin.list_topics())
        present = [name for name in wanted if name in existing]
        _check_partitions(settings, await admin.describe_topics(present) if present else [])
        missing = [
            NewTopic(
                name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=config,
            )
            for name, config in wanted.items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                log.info("another process created the topics first")
            # A new topic (or one another process made meanwhile) is in use only once the
            # metadata has it: a consumer group assigned before then leaves it out (F15).
            _check_partitions(settings, await _visible(admin, [t.name for t in missing]))
        return [topic.name for topic in missing]
    finally:
        await admin.close()


def _check_partitions(settings: Settings, described: Sequence[dict[str, Any]]) -> None:
    for topic in described:
        count = len(topic["partitions"])
        if count != settings.topic_partitions:
            raise ConfigurationError(
                f"topic {topic['topic']} has {count} partitions, expected "
                f"{settings.topic_partitions}: a run's topics must be co-partitioned"
            )


def _led(topic: dict[str, Any]) -> bool:
    """The topic is known and every partition has a leader."""
    partitions = topic["partitions"]
    return (
        topic["error_code"] == 0 and bool(partitions) and all(p["leader"] >= 0 for p in partitions)
    )


async def _visible(admin: AIOKafkaAdminClient, names: Sequence[str]) -> list[dict[str, Any]]:
    """The topics' descriptions once the metadata has each with a leader per partition."""
    deadline = time.monotonic() + VISIBLE_WITHIN_S
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(list(names))
        waiting = [topic["topic"] for topic in described if not _led(topic)]
        if not waiting:
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"created topics not in the broker's metadata after {VISIBLE_WITHIN_S:.0f} s:"
                f" {', '.join(waiting)}"
            )
        await asyncio.sleep(0.1)


async def read_all(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record now on ``topic`` (all partitions, from the first offset), no group."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
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
