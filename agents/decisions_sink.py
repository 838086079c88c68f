"""Decisions sink agent: every DecisionMade into pipeline_decisions, in batches."""

import asyncio
import logging
import random

import asyncpg

from agents.app import PlanstreamApp
from planstream.adapters.db import create_pool
from planstream.adapters.decision_log import DecisionLog
from planstream.crashpoints import crashpoint
from planstream.events import DecisionMade
from planstream.retrying import RetryPolicy, backoff_delay
from topics import DECISION_MADE

__all__ = ["build"]

SERVICE = "decisions_sink"

logger = logging.getLogger(__name__)


async def _store(log: DecisionLog, batch: list[DecisionMade]) -> None:
    """Write the batch, waiting out a PostgreSQL outage: a sink never drops what it was given."""
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=10.0)
    failures = 0
    while True:
        try:
            await log.write(batch)
            return
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            failures += 1
            delay = backoff_delay(policy, failures, random.random())
            logger.warning("decisions not stored (%s); retry %d in %.1fs", exc, failures, delay)
            await asyncio.sleep(delay)


def build(app: PlanstreamApp) -> None:
    settings = app.settings

    @app.agent(app.event_topic(DECISION_MADE), name=SERVICE, concurrency=1)
    async def sink(stream):  # type: ignore[no-untyped-def]
        pool = await create_pool(settings.dsn, max_size=2)
        app.on_close(pool.close)
        log = DecisionLog(pool)
        async for batch in stream.take(settings.sink_batch_size, within=settings.sink_batch_s):
            await _store(log, batch)
            crashpoint("decisions_sink.after_write")
