"""One planstream hop without storage, database or model, for ``planstream bench``.

``python -m planstream.dev.bench.hop_app [pooled]`` (settings from ``PLANSTREAM_*``) runs the app
``create_app`` builds for every service — FlowSafeConsumer, the ``dedup`` table, dead-lettering
topics — with one agent shaped like Image I/O's: each ``StepRequested`` is decoded and validated
by the topic's codec and handled through ``PlanstreamApp.process`` (idempotency mark, retries,
dead letters), which publishes an ``ImageReady`` and awaits the broker's acknowledgement before
the mark is written. With ``pooled`` each event goes through the app's WorkPool, one at a time
per run and step, as the Info Worker's do. Left out: the job receipt ``submit`` writes to
PostgreSQL, and each service's own work.
"""

import asyncio
import os
import sys
from functools import partial

import faust

from planstream.adapters.faust.app import PlanstreamApp, TopicPublisher, create_app
from planstream.adapters.kafka import ensure_changelogs, ensure_topics
from planstream.dev.bench.rows import image_ready
from planstream.domain.events import StepRequested
from planstream.domain.ids import new_id
from planstream.settings import Settings
from topics import DEAD_LETTER, IMAGE_READY, STEP_REQUESTED

__all__ = ["SERVICE", "build", "main"]

SERVICE = "bench_hop"


def build(app: PlanstreamApp, *, pooled: bool = False) -> None:
    """The hop's agent on ``app``."""
    publisher = TopicPublisher(app)
    job_id = new_id("job")

    async def publish(request: StepRequested) -> None:
        await publisher.publish(IMAGE_READY, image_ready(request, job_id))

    @app.agent(app.event_topic(STEP_REQUESTED), name=SERVICE, concurrency=1)
    async def hop(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            handle = partial(app.process, event, partial(publish, event.value))
            if pooled:
                await app.pool.submit((event.value.run_id, event.value.step_id), handle)
            else:
                await handle()


def main(argv: list[str]) -> int:
    settings = Settings.from_env(os.environ)
    asyncio.run(ensure_topics(settings, (STEP_REQUESTED, IMAGE_READY, DEAD_LETTER)))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings, SERVICE)
    build(app, pooled=argv == ["pooled"])
    loop.run_until_complete(ensure_changelogs(settings, app.changelog_topics()))  # as agents'
    level = os.environ.get("PLANSTREAM_LOG_LEVEL", "INFO").lower()
    faust.Worker(app, loop=loop, loglevel=level, quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
