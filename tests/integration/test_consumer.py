"""FlowSafeConsumer never moves past a message no stream took (findings F2 and F8).

In-process Faust apps on the real broker, one agent each. The first test stops the flow while
the fetcher waits to hand a message over, the way a rebalance does; the second drops a message
on its way to the stream, as faust-streaming's queue clears and fetch races do, and checks the
commit waits for it and the consumer fetches it again.
"""

import asyncio
import uuid

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from planstream.adapters.faust.consumer import FlowSafeTransport
from planstream.settings import Settings
from tests.stackkit import wait_for

MESSAGES = 60


class _ProbeApp(faust.App):
    """A bare Faust app with FlowSafeConsumer; ``settings`` gives its repair period."""

    def __init__(self, *args: object, settings: Settings, **options: object) -> None:
        super().__init__(*args, **options)
        self.settings = settings

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


async def _produce(settings: Settings, topic: str, messages: int = MESSAGES) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        for n in range(messages):
            await producer.send(topic, key=b"run", value=str(n).encode())
        await producer.flush()
    finally:
        await producer.stop()


def _app(settings: Settings, topic_name: str, seen: list[int], pause_s: float) -> _ProbeApp:
    """A finalized app whose one agent appends each value it takes to ``seen``."""
    datadir = settings.work_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = _ProbeApp(
        f"planstream-consumer-probe-{uuid.uuid4().hex[:8]}",
        settings=settings,
        datadir=str(datadir / "{conf.name}-data"),
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        stream_buffer_maxsize=1,
        broker_commit_interval=0.2,
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
    )

    @app.agent(app.topic(topic_name, key_serializer="raw", value_serializer="raw"))
    async def probe(stream):  # type: ignore[no-untyped-def]
        async for value in stream:
            seen.append(int(value))
            await asyncio.sleep(pause_s)

    app.finalize()
    return app


def _missing(seen: list[int]) -> list[int]:
    return sorted(set(range(MESSAGES)) - set(seen))


@pytest.mark.timeout(120)
async def test_a_message_fetched_while_the_flow_stops_is_delivered_later(
    settings: Settings,
) -> None:
    topic_name = await _topic(settings)
    seen: list[int] = []
    app = _app(settings, topic_name, seen, pause_s=0.02)  # slower than the fetcher
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
            pytest.fail(f"never delivered: {_missing(seen)}")
    finally:
        await app.stop()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("lost", "messages"),
    [
        pytest.param(5, MESSAGES, id="a hole: later messages acknowledged"),
        pytest.param(0, 1, id="a stall: the only message, nothing committed yet"),
    ],
)
async def test_a_message_dropped_on_its_way_holds_the_commit_and_is_fetched_again(
    settings: Settings, lost: int, messages: int
) -> None:
    topic_name = await _topic(settings)
    seen: list[int] = []
    settings = settings.with_overrides(consumer_repair_s=2.0)  # the repair finds it sooner
    app = _app(settings, topic_name, seen, pause_s=0.0)
    dropped: list[int] = []
    deliver = app.consumer.callback

    async def drop_once(message):  # type: ignore[no-untyped-def]
        if message.offset == lost and not dropped:
            dropped.append(message.offset)  # "delivered", but no stream ever sees it
            return None
        return await deliver(message)

    app.consumer.callback = drop_once
    await app.start()
    try:
        await _produce(settings, topic_name, messages)
        tp = next(iter(app.consumer.assignment()))

        async def everything_seen() -> bool:
            return set(seen) == set(range(messages)) and (
                app.consumer._committed_offset[tp] == messages
            )

        try:
            await wait_for(everything_seen, timeout_s=3 * settings.consumer_repair_s + 10)
        except AssertionError:
            committed = app.consumer._committed_offset[tp]
            pytest.fail(f"dropped {dropped}, seen {sorted(set(seen))}, committed {committed}")
        assert dropped == [lost]
        assert seen.count(lost) == 1 and seen.index(lost) >= seen.index(messages - 1)
    finally:
        await app.stop()
