"""Supervisor agent: comparisons and upstream failures in; decisions and the run's next step out."""

from functools import partial

from planstream.adapters.faust.app import PlanstreamApp
from planstream.services.supervisor import SERVICE, Supervisor
from topics import COMPARISON_COMPLETED, RUN_REVIEWED, STEP_FAILED

__all__ = ["build"]


def build(app: PlanstreamApp) -> None:
    policy = app.settings.policy()

    @app.agent(app.event_topic(COMPARISON_COMPLETED), name=f"{SERVICE}-comparisons", concurrency=1)
    async def comparisons(stream):  # type: ignore[no-untyped-def]
        service = Supervisor(await app.runtime(), policy)
        async for event in stream.events():
            await app.submit(event, partial(service.on_comparison, event.value))

    @app.agent(app.event_topic(STEP_FAILED), name=f"{SERVICE}-failures", concurrency=1)
    async def failures(stream):  # type: ignore[no-untyped-def]
        service = Supervisor(await app.runtime(), policy)
        async for event in stream.events():
            await app.submit(event, partial(service.on_step_failed, event.value))

    @app.agent(app.event_topic(RUN_REVIEWED), name=f"{SERVICE}-reviews", concurrency=1)
    async def reviews(stream):  # type: ignore[no-untyped-def]
        service = Supervisor(await app.runtime(), policy)
        async for event in stream.events():
            await app.submit(event, partial(service.on_review, event.value))
