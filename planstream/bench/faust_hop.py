"""One planstream agent hop without I/O, run as a child process: decode, validate, produce.

``python -m planstream.bench.faust_hop`` (settings from ``PLANSTREAM_*``) runs a Faust app built
with the options of ``agents.app.create_app`` (``faust_options`` below; a test keeps the two
equal) and one agent shaped like Image I/O's: each ``StepRequested`` is decoded and validated
by planstream's EventCodec, checked against the app's ``dedup`` table, turned into an
``ImageReady`` (validated on construction) inside ``call_with_retries``, published through a
dead-lettering topic with the broker's acknowledgement awaited before the next event (as
``TopicPublisher`` does), then marked done in the table. With the argument
``pooled`` each event goes through a ``WorkPool`` instead (``model_concurrency`` in flight, one
at a time per run and step), as the Info Worker, Comparison Worker and Supervisor do. No
database, storage or model: what remains is the cost of planstream's Kafka path.
(``planstream`` never imports the ``agents`` glue, hence the mirror of the factory's options.)
"""

import asyncio
import logging
import os
import sys
import time
from functools import partial
from typing import Any

import faust

from planstream.adapters.kafka import DeadLetteringTopic, DeadLetters, EventCodec, ensure_topics
from planstream.events import ImageReady, StepRequested
from planstream.ids import new_id
from planstream.retrying import RetryPolicy, call_with_retries
from planstream.settings import Settings
from planstream.workpool import WorkPool
from topics import DEAD_LETTER, IMAGE_READY, STEP_REQUESTED, TopicSpec

__all__ = ["SERVICE", "faust_options", "image_ready", "main"]

SERVICE = "bench_hop"
log = logging.getLogger(__name__)


def faust_options(settings: Settings, service: str) -> dict[str, Any]:
    """The Faust options ``agents.app.create_app`` gives every planstream service."""
    return {
        "id": f"planstream-{service}{settings.app_id_suffix}",
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "store": "memory://",
        "datadir": str(settings.work_dir / "faust" / "{conf.name}-data"),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        "topic_disable_leader": True,
        "table_standby_replicas": 0,
        "broker_commit_interval": settings.broker_commit_interval_s,
        "producer_linger": settings.producer_linger_ms / 1000,
        "producer_acks": -1,
        "consumer_auto_offset_reset": "earliest",
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
        "broker_rebalance_timeout": 10.0,
        "broker_request_timeout": 20.0,
        "stream_wait_empty": True,
        "web_enabled": False,
        "autodiscover": False,
    }


def image_ready(request: StepRequested, job_id: str) -> ImageReady:
    """The event Image I/O publishes for a step request whose images passed."""
    return ImageReady(
        event_id=new_id("evt"),
        run_id=request.run_id,
        occurred_at=request.occurred_at,
        step_id=request.step_id,
        attempt=request.attempt,
        idempotency_key=request.idempotency_key,
        job_id=job_id,
        artifact_ids=request.input_artifact_ids,
        quality="2K",
        versions=request.versions,
    )


def _topic(app: faust.App, settings: Settings, spec: TopicSpec, dlq: DeadLetters) -> Any:
    assert spec.value_model is not None
    return DeadLetteringTopic(
        app,
        topics=[spec.full_name(settings.topic_namespace)],
        key_serializer="raw",
        value_serializer=EventCodec(spec.value_model, settings.max_event_bytes),
        partitions=settings.topic_partitions,
        dead_letters=dlq,
    )


def build(settings: Settings, pooled: bool = False) -> faust.App:
    """The app and its one agent; ``pooled`` hands each event to a WorkPool (Info Worker's way).

    Like ``PlanstreamApp.process``: an event whose idempotency mark is in the app's ``dedup``
    table is skipped; otherwise it is handled with retries (a refusal is dead-lettered) and
    marked done afterwards, which writes the table's changelog.
    """
    (settings.work_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(**faust_options(settings, SERVICE))
    dedup = app.Table("dedup", default=None, partitions=settings.topic_partitions)
    dead_letters = DeadLetters(app, settings, SERVICE)
    source = _topic(app, settings, STEP_REQUESTED, dead_letters)
    sink = _topic(app, settings, IMAGE_READY, dead_letters)
    retries = RetryPolicy(attempts=settings.max_attempts)
    job_id = new_id("job")

    async def publish(request: StepRequested) -> None:
        delivery = await sink.send(key=request.run_id, value=image_ready(request, job_id))
        await delivery

    async def process(event: Any) -> None:
        request: StepRequested = event.value
        key = f"{SERVICE}:{type(request).__name__}:{request.idempotency_key}"
        marked = dedup.get(key)
        if marked is not None and time.time() - marked <= settings.dedup_retention_s:
            return
        try:
            await call_with_retries(retries, partial(publish, request), what=SERVICE)
        except Exception as exc:
            await dead_letters.send(event.message, exc)
            return
        dedup[key] = time.time()

    pool = WorkPool(settings.model_concurrency, SERVICE)

    async def hop(stream: Any) -> None:
        async for event in stream.events():
            if pooled:
                key = (event.value.run_id, event.value.step_id)
                await pool.submit(key, partial(process, event))
            else:
                await process(event)

    app.agent(source, name=SERVICE, concurrency=1)(hop)
    return app


def main(argv: list[str]) -> int:
    settings = Settings.from_env(os.environ)
    asyncio.run(ensure_topics(settings, (STEP_REQUESTED, IMAGE_READY, DEAD_LETTER)))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = build(settings, pooled=argv == ["pooled"])
    level = os.environ.get("PLANSTREAM_LOG_LEVEL", "INFO").lower()
    faust.Worker(app, loop=loop, loglevel=level, quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
