"""Image I/O agent: step requests in, ImageReady or StepFailed out."""

import logging
from functools import partial

from agents.app import PlanstreamApp, TopicPublisher
from planstream.adapters.db import create_pool
from planstream.adapters.repository import Repository
from planstream.adapters.storage import Storage
from planstream.errors import PermanentError, RetryableError
from planstream.events import StepRequested
from planstream.ids import new_id
from planstream.image_io import SERVICE, ImageIO
from planstream.retrying import RetryPolicy, call_with_retries
from topics import STEP_REQUESTED

__all__ = ["build"]

log = logging.getLogger(__name__)


async def _open(app: PlanstreamApp) -> ImageIO:
    settings = app.settings
    pool = await create_pool(
        settings.dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    app.on_close(pool.close)
    storage = Storage(settings)
    await storage.start()
    app.on_close(storage.stop)
    return ImageIO(
        repo=Repository(pool),
        storage=storage,
        publisher=TopicPublisher(app),
        settings=settings,
        worker_id=f"{SERVICE}-{new_id('job')[4:16]}",
    )


def build(app: PlanstreamApp) -> None:
    """Declare the Image I/O agent on ``app``."""
    policy = RetryPolicy(attempts=app.settings.max_attempts)

    @app.agent(app.event_topic(STEP_REQUESTED), name=SERVICE, concurrency=1)
    async def image_io(stream):  # type: ignore[no-untyped-def]
        service = await _open(app)
        async for event in stream.events():
            request: StepRequested = event.value
            try:
                await call_with_retries(
                    policy, partial(service.handle, request), what="image check"
                )
            except (PermanentError, RetryableError) as exc:
                await app.dead_letters.send(event.message, exc)
