"""Comparison Worker agent: Spaces documents in, rule and request failures out."""

from functools import partial

from planstream.adapters.faust.app import PlanstreamApp
from planstream.services.comparison_worker import SERVICE, ComparisonWorker
from topics import INFO_EXTRACTED

__all__ = ["build"]


def build(app: PlanstreamApp) -> None:
    @app.agent(app.event_topic(INFO_EXTRACTED), name=SERVICE, concurrency=1)
    async def comparison(stream):  # type: ignore[no-untyped-def]
        service = ComparisonWorker(await app.runtime(), app.settings.policy())
        async for event in stream.events():
            await app.submit(event, partial(service.handle, event.value))
