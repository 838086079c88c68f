"""PostgreSQL round trips of one step-0 attempt, per service, on the real adapters: every
statement the four step services send, counted by asyncpg's query logger, each service's job
receipt (the agent's ``Jobs.receive``) included. Storage, the model, imaging and Kafka are the
fakes (none of them talks to PostgreSQL), which count the object reads and writes, model calls
and publishes of the same traced run. The counts are pinned, and they are the I/O floor's
(``planstream.dev.bench.floor_counts.STEP_ZERO``): a change that adds an operation to the hot
path has to say so here, and the floor then makes it too."""

from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest

from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.model_calls import ModelCallLog
from planstream.adapters.postgres.rate_limiter import RateLimiter
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.routes import Routes
from planstream.dev.bench.floor_counts import STEP_ZERO
from planstream.domain.events import ComparisonCompleted, ImageReady, InfoExtracted
from planstream.domain.ids import new_id
from planstream.domain.records import Run, Upload
from planstream.domain.rules import Policy
from planstream.domain.service_names import job_service
from planstream.services import comparison_worker, image_io, info_worker, supervisor
from planstream.services.jobs import Jobs
from planstream.services.routing import Routing
from planstream.services.runtime import Runtime, utc_now
from planstream.services.signing import SignedUrls
from planstream.settings import Settings
from tests.fakes import FakeImaging, FakeModelClient, FakePublisher, FakeStorage
from tests.fakes.imaging import fake_image
from tests.unit.services.steps import (
    audit_answer,
    comparison_answer,
    make_step_requested,
    plan_answer,
)
from topics import COMPARISON_COMPLETED, IMAGE_READY, INFO_EXTRACTED, STEP_REQUESTED, TopicSpec

# Round trips per service for one step-0 attempt (a request text, so the comparison calls the
# model): the job receipt; the lease with the run (the Info Worker reads no run); the step's
# artifact reads and writes; per model call its budget count, rate-limit reservation and
# settlement, and its record as started then ended (F10); the Supervisor's claim of the next
# step's route; the finish. Before issue 17: 18, 24, 24, 26 (asyncpg's reset query on every
# release, the run read apart from the lease, two artifact reads, a three-statement finish,
# Image I/O's facts and its copy's key in two updates).
EXPECTED = {"image_io": 6, "info_worker": 11, "comparison_worker": 9, "supervisor": 10}
_POOL_SIZE = 4


class _CountedStorage(FakeStorage):
    """The fake store, counting reads and writes."""

    reads = 0
    writes = 0

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        self.reads += 1
        return await super().read(bucket, key, max_bytes)

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        self.writes += 1
        await super().write(key, data, content_type)


class _Counted:
    """The pool's connections, each logging its statements into ``sent``."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def log(self, record: asyncpg.connection.LoggedQuery) -> None:
        self.sent.append(" ".join(record.query.split())[:90])


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, _Counted]]:
    pool = await create_pool(settings.dsn, min_size=_POOL_SIZE, max_size=_POOL_SIZE)
    counter = _Counted()
    held = [await pool.acquire() for _ in range(_POOL_SIZE)]
    for conn in held:
        conn.add_query_logger(counter.log)
    for conn in held:
        await pool.release(conn)
    yield pool, counter
    await pool.close()


def _runtime(
    settings: Settings, pool: asyncpg.Pool, service: str, fakes: tuple[object, ...]
) -> Runtime:
    storage, model, publisher, imaging = fakes
    repo = Repository(pool)
    assert isinstance(storage, FakeStorage)
    return Runtime(
        settings=settings,
        repo=repo,
        storage=storage,
        model=model,  # type: ignore[arg-type]
        model_calls=ModelCallLog(pool),
        publisher=publisher,  # type: ignore[arg-type]
        imaging=imaging,  # type: ignore[arg-type]
        signed_urls=SignedUrls(repo, storage, settings, utc_now),
        jobs=Jobs(JobLeases(pool), settings, job_service(service), f"{service}-rt"),
        limiter=RateLimiter(pool),
        routing=Routing(Routes(pool), settings.route_cache_s, utc_now),
    )


class _Services:
    """The four step services on the real PostgreSQL adapters, sharing the fakes of the rest;
    kept across runs, as a process keeps them (its routing flags cached, statements prepared)."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.storage = _CountedStorage(settings.s3_bucket)
        self.model, self.publisher = FakeModelClient(), FakePublisher()
        fakes = (self.storage, self.model, self.publisher, FakeImaging())
        self.rt = {name: _runtime(settings, pool, name, fakes) for name in EXPECTED}
        self.operations: dict[str, dict[str, int]] = {}

    def tally(self) -> dict[str, int]:
        """Object reads and writes, model calls and publishes so far."""
        return {
            "s3_get": self.storage.reads,
            "s3_put": self.storage.writes,
            "model": len(self.model.chat_requests),
            "published": len(self.publisher.published),
        }


async def _step_zero(services: _Services, counter: _Counted) -> dict[str, list[str]]:
    """One run's step 0 through the four services; the statements each one sent."""
    rt, storage, publisher = services.rt, services.storage, services.publisher
    repo = rt["image_io"].repo
    upload_id, run_id, source_id = new_id("upl"), new_id("run"), new_id("art")
    upload = Upload(upload_id, storage.bucket, f"uploads/{upload_id}.png", "image/png", utc_now())
    await repo.create_upload(upload)
    run = Run(run_id, upload_id, "4:3", "2K", "two bedrooms and a bathroom", "pending", 0)
    await repo.create_run(run, upload, source_id, 1_000)
    storage.put(storage.bucket, upload.storage_path, fake_image(2400, 1800))
    services.model.script_chat(plan_answer(), comparison_answer(), audit_answer(0.95))
    sent: dict[str, list[str]] = {}

    async def counted(service: str, event: object, topic: TopicSpec) -> None:
        mark, before = len(counter.sent), services.tally()
        await rt[service].jobs.receive(event, topic)  # type: ignore[arg-type]
        match service:
            case "image_io":
                await image_io.ImageIO(rt[service]).handle(event)  # type: ignore[arg-type]
            case "info_worker":
                await info_worker.InfoWorker(rt[service]).handle(event)  # type: ignore[arg-type]
            case "comparison_worker":
                worker = comparison_worker.ComparisonWorker(rt[service], Policy())
                await worker.handle(event)  # type: ignore[arg-type]
            case _:
                decide = supervisor.Supervisor(rt[service], Policy())
                await decide.on_comparison(event)  # type: ignore[arg-type]
        sent[service] = counter.sent[mark:]
        after = services.tally()
        services.operations[service] = {k: after[k] - before[k] for k in after}

    request = make_step_requested(run_id=run_id, input_artifact_ids=[source_id])
    await counted("image_io", request, STEP_REQUESTED)
    ready = publisher.events(IMAGE_READY)[-1]
    assert isinstance(ready, ImageReady)
    await counted("info_worker", ready, IMAGE_READY)
    extracted = publisher.events(INFO_EXTRACTED)[-1]
    assert isinstance(extracted, InfoExtracted)
    await counted("comparison_worker", extracted, INFO_EXTRACTED)
    compared = publisher.events(COMPARISON_COMPLETED)[-1]
    assert isinstance(compared, ComparisonCompleted)
    await counted("supervisor", compared, COMPARISON_COMPLETED)
    return sent


async def test_round_trips_of_one_step_zero_attempt_per_service(
    settings: Settings, counted: tuple[asyncpg.Pool, _Counted]
) -> None:
    pool, counter = counted
    services = _Services(settings, pool)
    await _step_zero(services, counter)  # warm: routing flags cached, statements prepared
    sent = await _step_zero(services, counter)
    for service, statements in sent.items():
        print(f"{service}: {len(statements)}")
        for statement, times in Counter(statements).items():
            print(f"  {times} x {statement}")
    assert {service: len(statements) for service, statements in sent.items()} == EXPECTED


async def test_the_io_floor_makes_the_operations_of_a_traced_step_zero_run(
    settings: Settings, counted: tuple[asyncpg.Pool, _Counted]
) -> None:
    pool, counter = counted
    services = _Services(settings, pool)
    await _step_zero(services, counter)
    sent = await _step_zero(services, counter)
    for service, floor in STEP_ZERO.items():
        done = services.operations[service]
        print(f"{service}: {len(sent[service])} statements, {done}")
        assert len(sent[service]) == EXPECTED[service] == floor.postgres
        assert (done["s3_get"], done["s3_put"]) == (floor.s3_get, floor.s3_put), service
        assert done["model"] == floor.model, service
        # The agent adds one record per handled event: the dedup mark (PlanstreamApp.process);
        # each service handles the one event it consumed.
        assert done["published"] + 1 == floor.kafka_produce, service
        assert floor.kafka_consume == 1
