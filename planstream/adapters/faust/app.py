"""The Faust app factory, the runtime every service shares, and how an event is processed.

A replay app (``create_app(..., replay=True)``; docs/replay.md) runs the same agents on the
replay family: its own app id, so its own consumer groups, dedup table and changelog; every
``event_topic`` is the topic's replay twin, whose codec refuses an event without a
``replay_id`` (a production codec refuses one with it); an agent on a topic with no twin is not
started. Each event is handled inside its replay, its dedup key under the replay id; what the
replay gate does around it (its scope, a cancelled replay's events dropped, a refused event's
attempt failed) is ``planstream.adapters.faust.replay_gate``. ``replay_concurrency`` events are
in flight per replay process.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import faust
from aiohttp import web
from faust.types import EventT, Message, TransportT

from planstream.adapters import logs, tracing
from planstream.adapters.composition import open_replay_runtime, open_runtime
from planstream.adapters.faust.consumer import FlowSafeTransport
from planstream.adapters.faust.replay_gate import ReplayGate
from planstream.adapters.kafka import DeadLetteringTopic, DeadLetters, EventCodec
from planstream.adapters.kafka.security import faust_options
from planstream.adapters.metrics_server import Liveness, start_metrics_server
from planstream.adapters.postgres.db import DATA_ERRORS, OUTAGE_ERRORS
from planstream.crashpoints import crashpoint
from planstream.domain.errors import PermanentError, RetryableError
from planstream.domain.events import Event, StepEvent
from planstream.domain.wire import encode_event
from planstream.ports import ReplayLedger
from planstream.services import metrics
from planstream.services.jobs import JobHeldElsewhere
from planstream.services.retrying import RetryPolicy, call_through_outages, call_with_retries
from planstream.services.runtime import Runtime
from planstream.services.workpool import WorkPool
from planstream.settings import Settings
from topics import REPLAY_FAMILY, TopicSpec, by_name, replay_twin

__all__ = ["PlanstreamApp", "TopicPublisher", "app_id", "create_app"]

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
T = TypeVar("T")

# What dead-letters an event rather than retrying it: a refusal (RecordMissing is one), a
# transient failure that outlived its retries, or PostgreSQL refusing the event's values as
# data (repeating it cannot help; planstream.adapters.postgres.db says which errors those are).
_REFUSALS: tuple[type[BaseException], ...] = (PermanentError, RetryableError, *DATA_ERRORS)

_REPLAY_TOPICS = frozenset(spec.name for spec in REPLAY_FAMILY)


class PlanstreamApp(faust.App):
    """A Faust app that knows its service, its dead letters, and what to close on stop."""

    # Faust's own lines about the app (Starting..., Stopping...) stay under Faust's loggers, at
    # the libraries' level (planstream.adapters.logs); planstream's are logged with ``log``.
    logger = logging.getLogger("faust.app.planstream")

    def __init__(
        self, settings: Settings, service: str, *, replay: bool = False, **options: Any
    ) -> None:
        super().__init__(**options)
        self.settings = settings
        self.service_name = service
        self.replay = replay
        self.dead_letters = DeadLetters(self, settings, service)
        limit = settings.replay_concurrency if replay else settings.model_concurrency
        self.pool = WorkPool(limit, service)
        self._retries = RetryPolicy(attempts=settings.max_attempts)
        self._closers: list[Closer] = []
        self._runtime: Runtime | None = None
        self._ledger: ReplayLedger | None = None
        self._runtime_lock = asyncio.Lock()
        self.gate = (
            ReplayGate(service, settings.topic_namespace, self.ledger, self._through_outages)
            if replay
            else None
        )
        # /healthz: the consumer's fetch loop and every handled event count as progress.
        self.liveness = Liveness(settings.liveness_s)
        self._metrics: web.AppRunner | None = None
        self.on_partitions_assigned.connect(cast(Any, self._count_rebalance))  # mode's typing
        # Idempotency marks: key -> when the effect it guards was done. A compacted changelog
        # keeps them across restarts; PostgreSQL's unique keys remain the guard of record.
        self.dedup = self.Table("dedup", default=None, partitions=settings.topic_partitions)

    def changelog_topics(self) -> list[str]:
        """The changelog topic of each of the app's tables (the dedup marks')."""
        return [table.changelog_topic.get_topic_name() for table in self.tables.values()]

    async def runtime(self) -> Runtime:
        """The process's pools and clients, opened on first use and closed on stop."""
        async with self._runtime_lock:
            if self._runtime is None:
                publisher = TopicPublisher(self)
                if self.replay:
                    self._runtime, self._ledger, close = await open_replay_runtime(
                        self.settings, self.service_name, publisher
                    )
                else:
                    self._runtime, close = await open_runtime(
                        self.settings, self.service_name, publisher
                    )
                self.on_close(close)
            return self._runtime

    async def ledger(self) -> ReplayLedger:
        """The replays' ledger of a replay app (opened with its runtime)."""
        await self.runtime()
        assert self._ledger is not None, "only a replay app keeps a replay ledger"
        return self._ledger

    def agent(self, channel: Any = None, **kwargs: Any) -> Any:
        """Faust's agent decorator; in a replay app, an agent on a topic outside the replay
        family (Image I/O's images, reviews: a replay carries none) is not started."""
        if self.replay and isinstance(channel, faust.Topic):
            names = [t.removeprefix(self.settings.topic_namespace) for t in channel.topics]
            if not all(name in _REPLAY_TOPICS for name in names):
                log.info(
                    "%s (replay): no agent on %s, which no replay event travels",
                    self.service_name,
                    ",".join(names),
                )
                return lambda function: function
        return super().agent(channel, **kwargs)

    def on_rebalance_start(self) -> None:
        super().on_rebalance_start()
        log.info("%s: rebalance started (#%d)", self.service_name, self.rebalancing_count)

    def on_rebalance_end(self) -> None:
        super().on_rebalance_end()
        assigned = sorted(f"{tp.topic}[{tp.partition}]" for tp in self.consumer.assignment())
        log.info(
            "%s: rebalance done, consuming %d partitions",
            self.service_name,
            len(assigned),
            extra={"partitions": ",".join(assigned)},
        )

    def _new_transport(self) -> TransportT:
        # The consumer that never counts a message read unless a stream took it
        # (planstream/adapters/faust/consumer.py).
        return FlowSafeTransport(self.conf.broker_consumer, self)

    def on_close(self, closer: Closer) -> None:
        """Run ``closer`` when the app stops (a pool or client an agent opened)."""
        self._closers.append(closer)

    async def on_start(self) -> None:
        await super().on_start()
        if self._metrics is None:  # Faust may start an app again; one endpoint per process
            self._metrics = await start_metrics_server(
                self.settings, self.service_name, self.liveness
            )

    async def on_stop(self) -> None:
        await self.pool.drain(timeout_s=self.settings.model_timeout_s)
        await super().on_stop()
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("closing a resource failed")
        if self._metrics is not None:
            await self._metrics.cleanup()
            self._metrics = None

    def event_topic(self, spec: TopicSpec) -> faust.Topic:
        """A catalogue topic whose undecodable messages are dead-lettered; in a replay app, the
        topic's replay twin (a twin is its own), whose events must carry a replay id."""
        model = spec.value_model
        assert model is not None, f"{spec.name} carries no event model"
        if self.replay and spec.name not in _REPLAY_TOPICS:
            spec = replay_twin(spec)
        codec = EventCodec(model, self.settings.max_event_bytes, replay=self.replay)
        return DeadLetteringTopic(
            self,
            topics=[spec.full_name(self.settings.topic_namespace)],
            key_serializer="raw",
            value_serializer=codec,
            partitions=self.settings.topic_partitions,
            dead_letters=self.dead_letters,
        )

    def _already_done(self, key: str) -> bool:
        """Whether the event's effect is marked done within the retention window."""
        marked = self.dedup.get(key)
        if marked is None:
            return False
        if time.time() - marked > self.settings.dedup_retention_s:
            del self.dedup[key]  # an expired mark: forget it (PostgreSQL still guards)
            return False
        log.info("%s skipped an event already handled", self.service_name, extra={"key": key})
        return True

    async def process(self, event: EventT[Event], handle: Callable[[], Awaitable[object]]) -> None:
        """Run ``handle`` once per idempotency key, transient failures retried; a refusal goes
        to the dead letters. The mark is written only after the effect it guards."""
        value = cast(Event, event.value)
        key = _dedup_key(self.service_name, value)
        if self._already_done(key):
            return
        started = time.monotonic()
        try:
            await self._through_outages(
                lambda: call_with_retries(
                    self._retries, handle, what=self.service_name, on_retry=self._count_retry
                )
            )
        except JobHeldElsewhere as held:
            log.info("%s", held)  # not done here: no mark, so a later re-drive still runs
            return
        except _REFUSALS as exc:  # the event's fault: dead-lettered, the agent goes on
            await self._refused(event, exc)
            return
        except Exception as exc:  # a bug: keep the event for a redrive after the fix
            log.exception("%s failed on an event; it is dead-lettered", self.service_name)
            await self._refused(event, exc)
            return
        finally:
            metrics.observe_handling(
                self.service_name, type(value).__name__, time.monotonic() - started
            )
            self.liveness.beat()
        crashpoint("dedup.after_emit_before_mark")
        self.dedup[key] = time.time()

    async def _refused(self, event: EventT[Event], error: BaseException) -> None:
        """Dead-letter the event; in a replay app, its attempt failed in its replay."""
        await self.dead_letters.send(event.message, error)
        if self.gate is not None:
            await self.gate.mark(cast(Event, event.value), "failed", error)

    async def _count_rebalance(self, sender: Any, *args: Any, **kwargs: Any) -> None:
        """Faust assigned this worker its partitions (``on_partitions_assigned``)."""
        metrics.count_rebalance(self.service_name)

    def _count_retry(self, error: BaseException) -> None:
        metrics.count_retry(self.service_name, metrics.reason_of(error))

    async def submit(self, event: EventT[Event], handle: Callable[[], Awaitable[object]]) -> None:
        """Record the event's job, then process it in the background pool, one at a time per
        run and step. The agent acknowledges the event when this returns, so the job row must
        exist first: PostgreSQL, not the offset, then holds the work (the sweeper re-drives it).
        An event no job row holds (a reviewer's decision) is processed before this returns.

        Every line logged while the event is handled carries its run, step, attempt, topic,
        partition and offset; each try of ``handle`` is a span that continues the event's trace.
        """
        value, message = cast(Event, event.value), event.message
        traced = tracing.handler(
            handle,
            f"{self.service_name} {type(value).__name__}",
            message.headers,
            {
                **tracing.event_attributes(value),
                "messaging.system": "kafka",
                "messaging.destination.name": message.topic,
                "messaging.kafka.partition": message.partition,
                "messaging.kafka.offset": message.offset,
            },
        )
        with logs.bound(**_log_fields(value, message)):
            if self.gate is None:
                await self._submit(event, traced)
                return
            with self.gate.inside(value):
                if await self.gate.ended(value, message.topic):
                    return
                await self._submit(event, traced)  # the pool's task keeps the replay's scope

    async def _submit(self, event: EventT[Event], handle: Callable[[], Awaitable[object]]) -> None:
        value = cast(Event, event.value)
        message = event.message
        topic = message.topic.removeprefix(self.settings.topic_namespace)
        log.info(
            "%s received %s for %s from %s[%d]@%d",
            self.service_name,
            type(value).__name__,
            value.run_id,
            message.topic,
            message.partition,
            message.offset,
        )
        if not isinstance(value, StepEvent):
            await self.process(event, handle)  # rare and quick; a crash before the ack redoes it
            metrics.count_consumed(self.service_name, topic)
            return
        source = by_name(topic)
        runtime = await self.runtime()
        try:
            await self._through_outages(lambda: runtime.jobs.receive(value, source))
        except DATA_ERRORS as exc:  # PostgreSQL refused the event's job as data: not retried
            await self.dead_letters.send(message, exc)
            metrics.count_consumed(self.service_name, topic)
            return
        await self.pool.submit((value.run_id, value.step_id), lambda: self.process(event, handle))
        metrics.count_consumed(self.service_name, topic)  # its job is recorded: it may be acked

    async def _through_outages(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, tried again for as long as PostgreSQL is unreachable: an outage is no
        fault of the event, so it is neither acknowledged nor dead-lettered meanwhile."""
        return await call_through_outages(
            call,
            OUTAGE_ERRORS,
            max_delay_s=self.settings.db_outage_retry_max_s,
            what=f"{self.service_name} (PostgreSQL)",
            on_retry=self._count_retry,
        )


def _log_fields(value: Event, message: Message) -> dict[str, object]:
    """What every line logged about the event says of it."""
    return {
        "run_id": value.run_id,
        "step_id": getattr(value, "step_id", None),  # a StepEvent's, or a RunBlocked's
        "attempt": getattr(value, "attempt", None),
        "event_id": value.event_id,
        "event": type(value).__name__,  # RunReviewed names a run, not a step
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "trace_id": tracing.trace_id_in(message.headers),  # lines logged outside the spans too
    }


def _dedup_key(service: str, value: Event) -> str:
    """The idempotency key of what ``service`` does with the event (a replay's: under its id,
    so two replays of one attempt are two effects)."""
    key = value.idempotency_key if isinstance(value, StepEvent) else value.event_id
    done = f"{service}:{type(value).__name__}:{key}"
    return done if value.replay_id is None else f"{value.replay_id}:{done}"


class TopicPublisher:
    """Publishes events through the app's producer and waits for the broker's acknowledgement;
    counts each acknowledged event and its size."""

    def __init__(self, app: PlanstreamApp) -> None:
        self._app = app
        self._topics: dict[str, faust.Topic] = {}

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        topic = self._topics.get(spec.name)
        if topic is None:
            topic = self._topics[spec.name] = self._app.event_topic(spec)
        size = len(encode_event(event, self._app.settings.max_event_bytes))  # as the codec will
        delivery = await topic.send(key=event.run_id, value=event, headers=tracing.kafka_headers())
        await delivery
        metrics.count_published(self._app.service_name, spec.name, size)


def app_id(settings: Settings, service: str, *, replay: bool = False) -> str:
    """The Faust app id (consumer group, table and changelog names) of ``service``'s app:
    ``planstream-<service>``, or ``planstream-replay-<service>`` for its replay app."""
    mode = "replay-" if replay else ""
    return f"planstream-{mode}{service}{settings.app_id_suffix}"


def create_app(settings: Settings, service: str, *, replay: bool = False) -> PlanstreamApp:
    """One Faust app per service (and one per service's replay mode), configured as
    FAUST-NOTES.md recommends."""
    datadir = settings.work_dir / "faust"  # Faust's own folders, not in the working folder
    datadir.mkdir(parents=True, exist_ok=True)
    if replay:
        metrics.label_mode("replay")
    return PlanstreamApp(
        settings,
        service,
        replay=replay,
        id=app_id(settings, service, replay=replay),
        **faust_options(settings),  # the broker and its TLS/SASL credentials
        store="memory://",
        datadir=str(datadir / "{conf.name}-data"),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_disable_leader=True,
        table_standby_replicas=0,
        broker_commit_interval=settings.broker_commit_interval_s,
        producer_linger=settings.producer_linger_ms / 1000,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=10.0,
        broker_request_timeout=20.0,
        stream_wait_empty=True,
        web_enabled=False,
        autodiscover=False,
    )
