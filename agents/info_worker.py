"""Info Worker agent: images ready (and retries) in; many model calls in flight at once."""

from functools import partial

from planstream.adapters.faust.app import PlanstreamApp
from planstream.services.info_worker import SERVICE, InfoWorker
from topics import IMAGE_READY, INFO_REQUESTED

__all__ = ["build"]


def build(app: PlanstreamApp) -> None:
    async def consume(stream, service: InfoWorker) -> None:  # type: ignore[no-untyped-def]
        async for event in stream.events():
            await app.submit(event, partial(service.handle, event.value))

    @app.agent(app.event_topic(IMAGE_READY), name=f"{SERVICE}-images", concurrency=1)
    async def images(stream):  # type: ignore[no-untyped-def]
        await consume(stream, InfoWorker(await app.runtime()))

    @app.agent(app.event_topic(INFO_REQUESTED), name=f"{SERVICE}-retries", concurrency=1)
    async def retries(stream):  # type: ignore[no-untyped-def]
        await consume(stream, InfoWorker(await app.runtime()))
