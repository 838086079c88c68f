"""Decisions sink: every DecisionMade into pipeline_decisions, one batch per Kafka fetch.

Not a Faust worker: a plain aiokafka consumer in the group the Faust agent used (so its
committed offsets carry over), stopped by SIGTERM. A batch's offsets are committed only after
its rows are in PostgreSQL: a batch written but not committed (a crash, a rebalance) is read
again, and the INSERT's ON CONFLICT absorbs it.

A PostgreSQL outage is waited out, the batch kept; a decision PostgreSQL refuses as data (a
NUL in its text, an unknown run) is dead-lettered with the database's error and the rest of
its batch is written: one bad record never stalls the sink (``planstream.adapters.postgres.db``
says which error is which).
"""

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from planstream.adapters import tracing
from planstream.adapters.kafka import EventCodec, ProducerDeadLetters
from planstream.adapters.kafka.security import client_options
from planstream.adapters.metrics_server import Liveness, serving_metrics
from planstream.adapters.postgres.db import DATA_ERRORS, OUTAGE_ERRORS, create_pool
from planstream.adapters.postgres.decision_log import DecisionLog, Stored
from planstream.crashpoints import crashpoint
from planstream.domain.events import DecisionMade
from planstream.domain.service_names import DECISIONS_SINK
from planstream.services import metrics
from planstream.services.retrying import call_through_outages
from planstream.settings import Settings
from topics import DECISION_MADE, replay_twin

__all__ = [
    "SERVICE",
    "Batch",
    "DecisionsSink",
    "Stopped",
    "group_id",
    "new_consumer",
    "opened",
    "run",
]

SERVICE: Final = DECISIONS_SINK

log = logging.getLogger(__name__)

AfterWrite = Callable[[Sequence[DecisionMade]], None]
Record: TypeAlias = ConsumerRecord[bytes, bytes]


class Stopped(Exception):
    """Told to stop while waiting out an outage: the batch is left uncommitted, to be re-read.

    A control-flow signal inside the sink (raised by the pause between two writes, caught by the
    loop), not an error: so it is no PlanstreamError, and no handler of planstream's errors
    catches it.
    """


def _crash_here(_: Sequence[DecisionMade]) -> None:
    crashpoint("decisions_sink.after_write")


def group_id(settings: Settings, *, replay: bool = False) -> str:
    """The Faust agent's app id: committed offsets carry over to the plain consumer. The replay
    sink's is ``planstream-replay-decisions_sink`` (planstream.adapters.kafka.replay_sink)."""
    mode = "replay-" if replay else ""
    return f"planstream-{mode}{SERVICE}{settings.app_id_suffix}"


@dataclass
class Batch:
    """What one fetch brought: the next offset of each partition read, and its records (each
    decision's record at the same index of ``sources``, to dead-letter it byte for byte)."""

    offsets: dict[TopicPartition, int]
    counts: dict[TopicPartition, int] = field(default_factory=dict)
    decisions: list[DecisionMade] = field(default_factory=list)
    sources: list[Record] = field(default_factory=list)
    refused: list[tuple[Record, Exception]] = field(default_factory=list)
    traces: list[tracing.Headers] = field(default_factory=list)  # each record's trace headers


class DecisionsSink:
    """Fetch a batch, dead-letter what does not decode, write the rest, then commit."""

    def __init__(
        self,
        settings: Settings,
        consumer: AIOKafkaConsumer,
        decisions: DecisionLog,
        dead_letters: ProducerDeadLetters,
        stop: asyncio.Event,
        after_write: AfterWrite = _crash_here,
        liveness: Liveness | None = None,
    ) -> None:
        self._settings = settings
        self._liveness = liveness or Liveness(settings.liveness_s)
        self._consumer = consumer
        self._decisions = decisions
        self._dead_letters = dead_letters
        self._stop = stop
        self._after_write = after_write
        self._codec = EventCodec(DecisionMade, settings.max_event_bytes)

    async def run(self) -> None:
        """Batches until told to stop, each stored then committed; the next one is read and
        decoded meanwhile (this process decodes while PostgreSQL writes). The batch in hand
        is finished at a stop, unless it is waiting for PostgreSQL to come back."""
        try:
            batch = await self._read()
            while batch is not None:
                following = asyncio.create_task(self._read())
                try:
                    with tracing.batch_span(f"{SERVICE} write", batch.traces):
                        await self._store(batch)
                except BaseException:
                    following.cancel()
                    await asyncio.gather(following, return_exceptions=True)
                    raise
                committed = await self._commit(batch.offsets)
                consumed = sum(batch.counts[tp] for tp in committed)
                if consumed:
                    metrics.count_consumed(SERVICE, DECISION_MADE.name, consumed)
                batch = await following
        except Stopped:
            log.info("%s stopped during a PostgreSQL outage; its batch is not committed", SERVICE)

    async def _read(self) -> Batch | None:
        """Up to ``sink_batch_size`` records, decoded (None once told to stop)."""
        if self._stop.is_set():
            return None
        fetched: dict[TopicPartition, list[Record]] = await self._consumer.getmany(
            timeout_ms=round(self._settings.sink_batch_s * 1000),
            max_records=self._settings.sink_batch_size,
        )
        self._liveness.beat()
        batch = Batch(
            {tp: records[-1].offset + 1 for tp, records in fetched.items()},
            {tp: len(records) for tp, records in fetched.items()},
        )
        for records in fetched.values():
            for record in records:
                batch.traces.append(record.headers)
                try:
                    decision = self._codec.loads(record.value)
                except Exception as exc:  # whatever the codec refuses, as Faust's decode did
                    batch.refused.append((record, exc))
                else:
                    batch.decisions.append(decision)
                    batch.sources.append(record)
        return batch

    async def _store(self, batch: Batch) -> None:
        """Dead-letter the refused records, then write the decisions and count the new ones."""
        started = time.monotonic()
        for record, error in batch.refused:
            await self._dead_letters.send(record, error)
        if batch.decisions:
            stored = await self._write_all(list(zip(batch.sources, batch.decisions, strict=True)))
            self._after_write(batch.decisions)
            for new in stored:
                metrics.count_decision(new.decision, _step_seconds(new))
            metrics.observe_handling(SERVICE, "batch", time.monotonic() - started)

    async def _write_all(self, part: list[tuple[Record, DecisionMade]]) -> list[Stored]:
        """Write ``part``; when PostgreSQL refuses it as data, halve it until each refused
        decision stands alone and dead-letter that one (with the database's error): every
        other decision is written, and the batch goes on to its commit."""
        try:
            return await self._write([decision for _, decision in part])
        except DATA_ERRORS as error:
            if len(part) == 1:
                await self._dead_letters.send(part[0][0], error)
                return []
            log.warning(
                "%s: PostgreSQL refused a part of %d decisions as data (%s); splitting it",
                SERVICE,
                len(part),
                type(error).__name__,
            )
            half = len(part) // 2
            return await self._write_all(part[:half]) + await self._write_all(part[half:])

    async def _write(self, decisions: list[DecisionMade]) -> list[Stored]:
        """Write the decisions, waiting out a PostgreSQL outage for as long as it lasts."""
        return await call_through_outages(
            lambda: self._decisions.write(decisions),
            OUTAGE_ERRORS,
            max_delay_s=self._settings.db_outage_retry_max_s,
            what=f"{SERVICE} (PostgreSQL)",
            sleep=self._pause,
            on_retry=lambda error: metrics.count_retry(SERVICE, metrics.reason_of(error)),
        )

    async def _pause(self, delay_s: float) -> None:
        """The wait between two tries of a write, cut short by a stop (alive meanwhile: a
        restart would not bring PostgreSQL back)."""
        self._liveness.beat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=delay_s)
        if self._stop.is_set():
            raise Stopped

    async def _commit(self, offsets: dict[TopicPartition, int]) -> list[TopicPartition]:
        """Commit the next offsets of the partitions still ours; a failed commit is healed by
        the next one, or the batch is re-read by the partition's next owner. The partitions
        committed."""
        owned = self._consumer.assignment()
        offsets = {tp: offset for tp, offset in offsets.items() if tp in owned}
        if not offsets:
            return []
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("%s: offsets not committed (%s); the batch may be read again", SERVICE, exc)
            return []
        return list(offsets)


def _step_seconds(stored: Stored) -> float | None:
    """From the step attempt's request to its decision, when the request time is known."""
    if stored.requested_at is None:
        return None
    return (stored.decision.occurred_at - stored.requested_at).total_seconds()


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts the partition assignments the sink's consumer receives."""

    async def on_partitions_revoked(self, revoked: object) -> None:
        return None

    async def on_partitions_assigned(self, assigned: object) -> None:
        metrics.count_rebalance(SERVICE)


def new_consumer(settings: Settings, *, replay: bool = False) -> AIOKafkaConsumer:
    """The sink's consumer: manual commits, from the start of a partition nobody committed
    (the replay sink's: on the decisions' replay twin, in its own group)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings),
        group_id=group_id(settings, replay=replay),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
        rebalance_timeout_ms=10_000,
        request_timeout_ms=20_000,
    )
    topic = replay_twin(DECISION_MADE) if replay else DECISION_MADE
    consumer.subscribe([topic.full_name(settings.topic_namespace)], listener=_Rebalances())
    return consumer


@contextlib.asynccontextmanager
async def opened(
    settings: Settings,
    stop: asyncio.Event,
    after_write: AfterWrite = _crash_here,
    liveness: Liveness | None = None,
) -> AsyncIterator[DecisionsSink]:
    """A sink whose pool, dead-letter producer and consumer are open inside the block."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(settings.dsn, max_size=2, command_timeout=settings.db_timeout_s)
        stack.push_async_callback(pool.close)
        dead_letters = ProducerDeadLetters(settings, SERVICE)
        await dead_letters.start()
        stack.push_async_callback(dead_letters.stop)
        consumer = new_consumer(settings)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        yield DecisionsSink(
            settings, consumer, DecisionLog(pool), dead_letters, stop, after_write, liveness
        )


Opener = Callable[..., contextlib.AbstractAsyncContextManager["DecisionsSink"]]
"""``opened`` or the replay sink's: a sink over ``(settings, stop, liveness=…)``."""


async def serve(settings: Settings, open_sink: Opener, *, replay: bool = False) -> None:
    """Run the sink ``open_sink`` opens, with its metrics and liveness, until SIGTERM or
    SIGINT; ``replay``: the replay sink (its series labelled ``mode="replay"``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    liveness = Liveness(settings.liveness_s)
    mode = " (replay)" if replay else ""
    if replay:
        metrics.label_mode("replay")
    async with (
        serving_metrics(settings, SERVICE, liveness),
        open_sink(settings, stop, liveness=liveness) as sink,
    ):
        log.info(
            "%s: Ready%s, batches of up to %d decisions",
            SERVICE,
            mode,
            settings.sink_batch_size,
            extra={"group_id": group_id(settings, replay=replay)},
        )
        await sink.run()
    log.info("%s: stopped%s", SERVICE, mode)


def run(settings: Settings) -> None:
    """Sink decisions until SIGTERM."""
    asyncio.run(serve(settings, opened))
