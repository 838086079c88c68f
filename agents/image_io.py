"""Image I/O agent: step requests in, ImageReady or StepFailed out; many runs in flight at once.

Each event's work goes to the app's pool, so one run's storage and database waits and its decode
thread overlap with the others'; the pool keeps a run's step events in order.
"""

from functools import partial

from planstream.adapters.faust.app import PlanstreamApp
from planstream.services.image_io import SERVICE, ImageIO
from topics import STEP_REQUESTED

__all__ = ["build"]


def build(app: PlanstreamApp) -> None:
    @app.agent(app.event_topic(STEP_REQUESTED), name=SERVICE, concurrency=1)
    async def image_io(stream):  # type: ignore[no-untyped-def]
        service = ImageIO(await app.runtime())
        async for event in stream.events():
            await app.submit(event, partial(service.handle, event.value))
