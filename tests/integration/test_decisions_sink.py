"""The decisions sink against the real broker and database: every decision stored once, an
undecodable record dead-lettered, offsets committed only after the write — so a batch written
but not committed (the sink killed in between) is read again, and ON CONFLICT absorbs it."""

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from planstream.adapters.kafka import ensure_topics
from planstream.adapters.kafka.decisions_sink import SERVICE, group_id, opened
from planstream.adapters.postgres.repository import Repository
from planstream.domain.events import DecisionMade
from planstream.domain.wire import encode_event
from planstream.settings import Settings
from tests.integration.test_decision_log import _decision, _run
from tests.stackkit import read_topic, wait_for
from topics import DEAD_LETTER, DECISION_MADE

POISON = b"\x00\xff{not a decision"


class Killed(Exception):
    """Stands for the process dying between the write and the commit."""


async def _own(settings: Settings, batch: int) -> Settings:
    """This test's own decisions topic and consumer group (the session's sink is not in it)."""
    tag = uuid.uuid4().hex[:8]
    own = settings.with_overrides(
        topic_namespace=f"{settings.topic_namespace.rstrip('.')}-sink{tag}.",
        app_id_suffix=f"{settings.app_id_suffix}-sink{tag}",
        sink_batch_size=batch,
        sink_batch_s=0.1,
    )
    await ensure_topics(own, [DECISION_MADE, DEAD_LETTER])
    return own


async def _publish(settings: Settings, decisions: Sequence[DecisionMade], *raw: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        topic = DECISION_MADE.full_name(settings.topic_namespace)
        for decision in decisions:
            data = encode_event(decision, settings.max_event_bytes)
            await producer.send_and_wait(topic, data, key=decision.run_id.encode())
        for value in raw:
            await producer.send_and_wait(topic, value, key=b"poison")
    finally:
        await producer.stop()


async def _lag(settings: Settings) -> dict[int, tuple[int | None, int]]:
    """Each partition's committed offset (None if never committed) and end offset."""
    topic = DECISION_MADE.full_name(settings.topic_namespace)
    partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id(settings))
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
        await admin.close()
    at = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
    return {tp.partition: (at.get(tp), ends[tp]) for tp in partitions}


async def _all_committed(settings: Settings) -> bool:
    return all(committed == end for committed, end in (await _lag(settings)).values())


async def _stored(pool, decisions: Sequence[DecisionMade]) -> list[str]:
    rows = await pool.fetch(
        "SELECT idempotency_key FROM pipeline_decisions WHERE idempotency_key = ANY($1::text[])",
        [d.idempotency_key for d in decisions],
    )
    return [row["idempotency_key"] for row in rows]


async def _decisions(repo: Repository, settings: Settings, count: int) -> list[DecisionMade]:
    return [_decision(await _run(repo, settings), 0, 1, "proceed") for _ in range(count)]


async def test_every_decision_is_stored_and_a_poison_record_dead_lettered(
    repo: Repository, pool, settings: Settings
) -> None:
    own = await _own(settings, batch=7)
    decisions = await _decisions(repo, own, 30)
    await _publish(own, decisions, POISON)
    stop = asyncio.Event()
    async with opened(own, stop) as sink:
        running = asyncio.create_task(sink.run())
        await wait_for(lambda: _all_committed(own), timeout_s=60)
        stop.set()
        await asyncio.wait_for(running, timeout=10)  # a stop ends the loop promptly
    assert sorted(await _stored(pool, decisions)) == sorted(d.idempotency_key for d in decisions)
    [letter] = await read_topic(own, DEAD_LETTER)
    headers = dict(letter.headers)
    assert (letter.key, letter.value) == (b"poison", POISON)
    assert headers["planstream-service"] == SERVICE.encode()
    assert (
        headers["planstream-source-topic"] == DECISION_MADE.full_name(own.topic_namespace).encode()
    )
    assert headers["planstream-error-class"] == b"EventRejected"
    lag = await _lag(own)
    assert sum(end for _, end in lag.values()) == len(decisions) + 1
    assert all(committed == end for committed, end in lag.values())


async def test_a_batch_written_but_not_committed_is_read_again_without_duplicates(
    repo: Repository, pool, settings: Settings
) -> None:
    own = await _own(settings, batch=5)
    decisions = await _decisions(repo, own, 20)
    await _publish(own, decisions)
    first: list[DecisionMade] = []

    def die_after_the_first_write(batch: Sequence[DecisionMade]) -> None:
        first.extend(batch)
        raise Killed

    async with opened(own, asyncio.Event(), die_after_the_first_write) as sink:
        with pytest.raises(Killed):
            await sink.run()
    assert first
    assert sorted(await _stored(pool, decisions)) == sorted(d.idempotency_key for d in first)
    assert all(committed is None for committed, _ in (await _lag(own)).values())

    again: list[DecisionMade] = []
    stop = asyncio.Event()
    async with opened(own, stop, again.extend) as sink:
        running = asyncio.create_task(sink.run())
        await wait_for(lambda: _all_committed(own), timeout_s=60)
        stop.set()
        await asyncio.wait_for(running, timeout=10)
    assert {d.idempotency_key for d in first} <= {d.idempotency_key for d in again}
    assert sorted(d.idempotency_key for d in again) == sorted(d.idempotency_key for d in decisions)
    stored = await _stored(pool, decisions)
    assert sorted(stored) == sorted(d.idempotency_key for d in decisions)  # each row once
