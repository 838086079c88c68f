"""The replay sink: every replayed decision into its replay's schema, and its attempt marked.

``python -m agents decisions_sink --replay``: the decisions sink (same batches, same commits,
same ``DecisionLog`` statements) on ``planstream.replay.decision.made.v1`` in its own group,
over the replay pool. A batch is written replay by replay, each part inside its replay
(``current_replay``), so its rows land in that replay's ``pipeline_decisions`` and its run
copies move, never production's; each attempt written is then marked ``decided``. A cancelled
replay's decisions are not written, their attempts marked cancelled; a failed or purged (or
unknown) replay's are dropped with a log line.
"""

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer

from planstream.adapters.kafka import EventCodec, ProducerDeadLetters
from planstream.adapters.kafka.decisions_sink import (
    SERVICE,
    AfterWrite,
    DecisionsSink,
    new_consumer,
    serve,
)
from planstream.adapters.metrics_server import Liveness
from planstream.adapters.postgres.db import OUTAGE_ERRORS
from planstream.adapters.postgres.decision_log import DecisionLog, Stored
from planstream.adapters.postgres.replay_ledger import ReplayLedger
from planstream.adapters.postgres.replay_pool import ReplayGone, create_replay_pool, replay_scope
from planstream.domain.events import DecisionMade
from planstream.services import metrics
from planstream.services.retrying import call_through_outages
from planstream.settings import Settings

__all__ = ["ReplayDecisionsSink", "opened", "run"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_NOT_WRITTEN = frozenset({"cancelled", "failed", "purged", None})


class ReplayDecisionsSink(DecisionsSink):
    """The decisions sink for replays: a replay codec, and each batch written per replay."""

    def __init__(
        self,
        settings: Settings,
        consumer: AIOKafkaConsumer,
        decisions: DecisionLog,
        dead_letters: ProducerDeadLetters,
        stop: asyncio.Event,
        *,
        ledger: ReplayLedger,
        **options: Any,  # DecisionsSink's after_write and liveness
    ) -> None:
        super().__init__(settings, consumer, decisions, dead_letters, stop, **options)
        self._codec = EventCodec(DecisionMade, settings.max_event_bytes, replay=True)
        self._ledger = ledger

    async def _write(self, decisions: list[DecisionMade]) -> list[Stored]:
        stored: list[Stored] = []
        for replay_id, part in _by_replay(decisions).items():
            with replay_scope(replay_id):
                try:
                    stored += await self._write_replay(replay_id, part)
                except ReplayGone as gone:
                    log.warning("%s dropped %d decisions: %s", SERVICE, len(part), gone)
        return stored

    async def _write_replay(self, replay_id: str, part: list[DecisionMade]) -> list[Stored]:
        """Write one replay's decisions and mark their attempts (or drop them, its replay
        having ended)."""
        ledger = self._ledger
        status = await self._waited(lambda: ledger.status(replay_id))
        if status in _NOT_WRITTEN:
            log.info(
                "%s: replay %s is %s; %d decisions not written",
                SERVICE,
                replay_id,
                status,
                len(part),
            )
            if status == "cancelled":
                await self._mark(replay_id, part, "cancelled")
            return []
        stored = await super()._write(part)
        await self._mark(replay_id, part, "decided")
        return stored

    async def _mark(self, replay_id: str, part: Sequence[DecisionMade], status: str) -> None:
        for d in part:
            mark = functools.partial(
                self._ledger.mark_attempt, replay_id, d.run_id, d.step_id, d.attempt, status
            )
            await self._waited(mark)

    async def _waited(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, a PostgreSQL outage waited out (a stop cuts the wait short)."""
        return await call_through_outages(
            call,
            OUTAGE_ERRORS,
            max_delay_s=self._settings.db_outage_retry_max_s,
            what=f"{SERVICE} (PostgreSQL, replay)",
            sleep=self._pause,
            on_retry=lambda error: metrics.count_retry(SERVICE, metrics.reason_of(error)),
        )


def _by_replay(decisions: Sequence[DecisionMade]) -> dict[str, list[DecisionMade]]:
    """The decisions by replay, in their order (the codec let none without a replay id in)."""
    parts: dict[str, list[DecisionMade]] = {}
    for decision in decisions:
        assert decision.replay_id is not None
        parts.setdefault(decision.replay_id, []).append(decision)
    return parts


@contextlib.asynccontextmanager
async def opened(
    settings: Settings,
    stop: asyncio.Event,
    after_write: AfterWrite | None = None,
    liveness: Liveness | None = None,
) -> AsyncIterator[ReplayDecisionsSink]:
    """A replay sink whose pool, dead-letter producer and consumer are open inside the block."""
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_replay_pool(settings, min_size=0, max_size=2)
        stack.push_async_callback(pool.close)
        dead_letters = ProducerDeadLetters(settings, SERVICE)
        await dead_letters.start()
        stack.push_async_callback(dead_letters.stop)
        consumer = new_consumer(settings, replay=True)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        options: dict[str, Any] = {"liveness": liveness}
        if after_write is not None:
            options["after_write"] = after_write
        yield ReplayDecisionsSink(
            settings,
            consumer,
            DecisionLog(pool),
            dead_letters,
            stop,
            ledger=ReplayLedger(pool),
            **options,
        )


def run(settings: Settings) -> None:
    """Sink replayed decisions until SIGTERM."""
    asyncio.run(serve(settings, opened, replay=True))
