"""Kafka administration: create the catalogue's topics and the workers' changelogs, read a
topic whole (no group)."""

import logging
from collections.abc import Sequence

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
    partition count; refuse existing ones with another count."""
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
        return [topic.name for topic in missing]
    finally:
        await admin.close()


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
