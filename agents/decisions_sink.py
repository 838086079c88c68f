"""Decisions sink agent: every DecisionMade into pipeline_decisions, in batches."""

from agents.app import PlanstreamApp
from planstream.adapters.db import create_pool
from planstream.adapters.decision_log import DecisionLog
from planstream.crashpoints import crashpoint
from topics import DECISION_MADE

__all__ = ["build"]

SERVICE = "decisions_sink"


def build(app: PlanstreamApp) -> None:
    settings = app.settings

    @app.agent(app.event_topic(DECISION_MADE), name=SERVICE, concurrency=1)
    async def sink(stream):  # type: ignore[no-untyped-def]
        pool = await create_pool(settings.dsn, max_size=2)
        app.on_close(pool.close)
        log = DecisionLog(pool)
        async for batch in stream.take(settings.sink_batch_size, within=settings.sink_batch_s):
            await log.write(batch)
            crashpoint("decisions_sink.after_write")
