"""The consumer fetches again what the streams did not take when the flow stopped (F2, F8).

An in-process Faust app with one slow agent and a one-event stream buffer: the fetcher is always
waiting to hand the next message over when the test stops the flow, the way a rebalance does.
Stock faust-streaming counts that message as read and moves on; ``FlowSafeConsumer`` must not.
"""

import asyncio
import uuid

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from agents.consumer import FlowSafeTransport
from planstream.settings import Settings
from tests.integration.stackkit import wait_for

MESSAGES = 60


class _ProbeApp(faust.App):
    def _new_transport(self):  # type: ignore[no-untyped-def]
        return FlowSafeTransport(self.conf.broker_consumer, self)


async def _topic(settings: Settings) -> str:
    name = f"{settings.topic_namespace}consumer-probe-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def _produce(settings: Settings, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(MESSAGES):
            await producer.send(topic, key=b"run", value=str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()


@pytest.mark.timeout(120)
async def test_a_message_fetched_while_the_flow_stops_is_delivered_later(
    settings: Settings,
) -> None:
    topic_name = await _topic(settings)
    app = _ProbeApp(
        f"planstream-consumer-probe-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        stream_buffer_maxsize=1,
        broker_commit_interval=0.2,
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
    )
    seen: list[int] = []

    @app.agent(app.topic(topic_name, key_serializer="raw", value_serializer="raw"))
    async def probe(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            seen.append(int(value))
            await asyncio.sleep(0.02)

    app.finalize()
    await app.start()
    try:
        await _produce(settings, topic_name)

        async def started() -> bool:
            return len(seen) >= 10

        await wait_for(started)
        for _ in range(3):  # the fetcher is blocked on the full buffer each time
            app.consumer.stop_flow()
            await asyncio.sleep(0.3)
            app.consumer.resume_flow()
            await asyncio.sleep(0.3)

        async def everything_seen() -> bool:
            return set(seen) == set(range(MESSAGES))

        try:
            await wait_for(everything_seen, timeout_s=30)
        except AssertionError:
            pytest.fail(f"never delivered: {sorted(set(range(MESSAGES)) - set(seen))}")
    finally:
        await app.stop()
