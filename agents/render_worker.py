"""Render worker agent: render requests in; the next step's image and its step request out."""

from functools import partial

from planstream.adapters.faust.app import PlanstreamApp
from planstream.services.render_worker import SERVICE, RenderWorker
from topics import RENDER_REQUESTED

__all__ = ["build"]


def build(app: PlanstreamApp) -> None:
    @app.agent(app.event_topic(RENDER_REQUESTED), name=SERVICE, concurrency=1)
    async def render(stream):  # type: ignore[no-untyped-def]
        service = RenderWorker(await app.runtime())
        async for event in stream.events():
            await app.submit(event, partial(service.handle, event.value))
