"""The Faust app factory, the runtime every service shares, and how an event is processed."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import faust
from faust.types import EventT, TransportT

from planstream.adapters.composition import open_runtime
from planstream.adapters.faust.consumer import FlowSafeTransport
from planstream.adapters.kafka import DeadLetteringTopic, DeadLetters, EventCodec
from planstream.adapters.postgres.db import OUTAGE_ERRORS
from planstream.crashpoints import crashpoint
from planstream.domain.errors import PermanentError, RetryableError
from planstream.domain.events import Event, StepEvent
from planstream.services.jobs import JobHeldElsewhere
from planstream.services.retrying import RetryPolicy, call_through_outages, call_with_retries
from planstream.services.runtime import Runtime
from planstream.services.workpool import WorkPool
from planstream.settings import Settings
from topics import TopicSpec, by_name

__all__ = ["PlanstreamApp", "TopicPublisher", "create_app"]

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]
T = TypeVar("T")


class PlanstreamApp(faust.App):
    """A Faust app that knows its service, its dead letters, and what to close on stop."""

    def __init__(self, settings: Settings, service: str, **options: Any) -> None:
        super().__init__(**options)
        self.settings = settings
        self.service_name = service
        self.dead_letters = DeadLetters(self, settings, service)
        self.pool = WorkPool(settings.model_concurrency, service)
        self._retries = RetryPolicy(attempts=settings.max_attempts)
        self._closers: list[Closer] = []
        self._runtime: Runtime | None = None
        self._runtime_lock = asyncio.Lock()
        # Idempotency marks: key -> when the effect it guards was done. A compacted changelog
        # keeps them across restarts; PostgreSQL's unique keys remain the guard of record.
        self.dedup = self.Table("dedup", default=None, partitions=settings.topic_partitions)

    async def runtime(self) -> Runtime:
        """The process's pools and clients, opened on first use and closed on stop."""
        async with self._runtime_lock:
            if self._runtime is None:
                self._runtime, close = await open_runtime(
                    self.settings, self.service_name, TopicPublisher(self)
                )
                self.on_close(close)
            return self._runtime

    def _new_transport(self) -> TransportT:
        # The consumer that never counts a message read unless a stream took it
        # (planstream/adapters/faust/consumer.py).
        return FlowSafeTransport(self.conf.broker_consumer, self)

    def on_close(self, closer: Closer) -> None:
        """Run ``closer`` when the app stops (a pool or client an agent opened)."""
        self._closers.append(closer)

    async def on_stop(self) -> None:
        await self.pool.drain(timeout_s=self.settings.model_timeout_s)
        await super().on_stop()
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("closing a resource failed")

    def event_topic(self, spec: TopicSpec) -> faust.Topic:
        """A catalogue topic whose undecodable messages are dead-lettered."""
        assert spec.value_model is not None, f"{spec.name} carries no event model"
        return DeadLetteringTopic(
            self,
            topics=[spec.full_name(self.settings.topic_namespace)],
            key_serializer="raw",
            value_serializer=EventCodec(spec.value_model, self.settings.max_event_bytes),
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
        key = _dedup_key(self.service_name, cast(Event, event.value))
        if self._already_done(key):
            return
        try:
            await self._through_outages(
                lambda: call_with_retries(self._retries, handle, what=self.service_name)
            )
        except JobHeldElsewhere as held:
            log.info("%s", held)  # not done here: no mark, so a later re-drive still runs
            return
        except (PermanentError, RetryableError) as exc:  # RecordMissing is a PermanentError
            await self.dead_letters.send(event.message, exc)
            return
        except Exception as exc:  # a bug: keep the event for a redrive after the fix
            log.exception("%s failed on an event; it is dead-lettered", self.service_name)
            await self.dead_letters.send(event.message, exc)
            return
        crashpoint("dedup.after_emit_before_mark")
        self.dedup[key] = time.time()

    async def submit(self, event: EventT[Event], handle: Callable[[], Awaitable[object]]) -> None:
        """Record the event's job, then process it in the background pool, one at a time per
        run and step. The agent acknowledges the event when this returns, so the job row must
        exist first: PostgreSQL, not the offset, then holds the work (the sweeper re-drives it).
        An event no job row holds (a reviewer's decision) is processed before this returns."""
        value = cast(Event, event.value)
        message = event.message
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
            return
        source = by_name(message.topic.removeprefix(self.settings.topic_namespace))
        runtime = await self.runtime()
        await self._through_outages(lambda: runtime.jobs.receive(value, source))
        await self.pool.submit((value.run_id, value.step_id), lambda: self.process(event, handle))

    async def _through_outages(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, tried again for as long as PostgreSQL is unreachable: an outage is no
        fault of the event, so it is neither acknowledged nor dead-lettered meanwhile."""
        return await call_through_outages(
            call,
            OUTAGE_ERRORS,
            max_delay_s=self.settings.db_outage_retry_max_s,
            what=f"{self.service_name} (PostgreSQL)",
        )


def _dedup_key(service: str, value: Event) -> str:
    """The idempotency key of what ``service`` does with the event."""
    key = value.idempotency_key if isinstance(value, StepEvent) else value.event_id
    return f"{service}:{type(value).__name__}:{key}"


class TopicPublisher:
    """Publishes events through the app's producer and waits for the broker's acknowledgement."""

    def __init__(self, app: PlanstreamApp) -> None:
        self._app = app
        self._topics: dict[str, faust.Topic] = {}

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        topic = self._topics.get(spec.name)
        if topic is None:
            topic = self._topics[spec.name] = self._app.event_topic(spec)
        delivery = await topic.send(key=event.run_id, value=event)
        await delivery


def create_app(settings: Settings, service: str) -> PlanstreamApp:
    """One Faust app per service, configured as FAUST-NOTES.md recommends."""
    datadir = settings.work_dir / "faust"  # Faust's own folders, not in the working folder
    datadir.mkdir(parents=True, exist_ok=True)
    return PlanstreamApp(
        settings,
        service,
        id=f"planstream-{service}{settings.app_id_suffix}",
        broker=f"kafka://{settings.kafka_bootstrap}",
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
