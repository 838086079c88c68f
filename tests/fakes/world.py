"""Every fake wired together, as the composition root wires the real adapters: one shared
database and clock, and a ``Runtime`` per service (each with its own worker id)."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from planstream.domain.events import Quality
from planstream.domain.ids import new_id
from planstream.domain.records import Artifact, ArtifactKind, Run, Upload
from planstream.domain.service_names import job_service
from planstream.services.jobs import Jobs
from planstream.services.routing import Routing
from planstream.services.runtime import Runtime
from planstream.services.signing import SignedUrls
from planstream.settings import Settings
from tests.fakes.clock import FakeClock
from tests.fakes.database import FakeDatabase
from tests.fakes.imaging import FakeImaging, fake_image
from tests.fakes.leases import FakeJobLeases
from tests.fakes.model import FakeModelClient
from tests.fakes.model_calls import FakeModelCallLog
from tests.fakes.publisher import FakePublisher
from tests.fakes.rate_limiter import FakeRateLimiter
from tests.fakes.repository import FakeRepository
from tests.fakes.routes import FakeRoutes
from tests.fakes.storage import FakeStorage

__all__ = ["FakeWorld", "make_world"]


@dataclass
class FakeWorld:
    """The fakes a test drives services with, and reads back what they did."""

    settings: Settings
    clock: FakeClock
    db: FakeDatabase
    leases: FakeJobLeases
    repo: FakeRepository
    storage: FakeStorage
    model: FakeModelClient
    model_calls: FakeModelCallLog
    publisher: FakePublisher
    limiter: FakeRateLimiter
    routes: FakeRoutes
    imaging: FakeImaging = field(default_factory=FakeImaging)
    outage_errors: tuple[type[BaseException], ...] = ()
    """What the runtimes take for a PostgreSQL outage (none unless a test names one)."""

    async def sleep(self, seconds: float) -> None:
        """A wait of the services (a backoff, the rate limiter's turn): the fake clock moves on
        and the loop runs the others once, so no test sleeps for real. A test of what runs
        meanwhile (the lease's heartbeat) replaces the runtime's ``sleep``."""
        self.clock.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def runtime(self, service: str, worker_id: str | None = None) -> Runtime:
        """What ``open_runtime`` gives ``service``, on the fakes."""
        return Runtime(
            settings=self.settings,
            repo=self.repo,
            storage=self.storage,
            model=self.model,
            model_calls=self.model_calls,
            publisher=self.publisher,
            imaging=self.imaging,
            signed_urls=SignedUrls(self.repo, self.storage, self.settings, self.clock),
            jobs=Jobs(
                self.leases,
                self.settings,
                job_service(service),
                worker_id or f"{service}-1",
                outages=self.outage_errors,
                sleep=self.sleep,
            ),
            limiter=self.limiter,
            routing=Routing(self.routes, self.settings.route_cache_s, self.clock),
            outage_errors=self.outage_errors,
            clock=self.clock,
            sleep=self.sleep,
        )

    async def new_run(
        self,
        *,
        quality: Quality = "2K",
        request_text: str | None = None,
        image: bytes | None = None,
    ) -> tuple[Run, str]:
        """A run as the ingress makes it, its uploaded image in storage; (run, source id)."""
        upload_id, run_id, source_id = new_id("upl"), new_id("run"), new_id("art")
        path = f"uploads/{upload_id}.png"
        upload = Upload(upload_id, self.storage.bucket, path, "image/png", self.clock())
        await self.repo.create_upload(upload)
        run = Run(run_id, upload_id, "4:3", quality, request_text, "pending", 0)
        await self.repo.create_run(run, upload, source_id, 1_000)
        self.storage.put(
            self.storage.bucket, path, fake_image(2400, 1800) if image is None else image
        )
        return run, source_id

    async def add_artifact(
        self,
        run_id: str,
        step_id: int,
        kind: ArtifactKind,
        data: bytes,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """An artifact of the run with its object in storage; its id."""
        artifact = Artifact(
            new_id("art"),
            run_id,
            step_id,
            kind,
            self.storage.bucket,
            f"runs/{run_id}/step-{step_id}/{kind}-{new_id('art')[4:]}",
            metadata or {},
        )
        self.storage.put(artifact.storage_bucket, artifact.storage_path, data)
        return await self.repo.store_artifact(artifact)

    def job(self, service: str, idempotency_key: str) -> dict[str, Any]:
        """The job row of ``service`` for the step attempt ``idempotency_key``."""
        row = self.db.job_by_key(f"{service}:{idempotency_key}")
        assert row is not None, f"{service} has no job for {idempotency_key}"
        return dict(vars(row))


def make_world(**settings: Any) -> FakeWorld:
    """A fresh world; ``settings`` override the defaults (``Settings`` never reads the env)."""
    clock = FakeClock()
    db = FakeDatabase(clock)
    configured = Settings(**settings)
    return FakeWorld(
        settings=configured,
        clock=clock,
        db=db,
        leases=FakeJobLeases(db),
        repo=FakeRepository(db),
        storage=FakeStorage(configured.s3_bucket, clock),
        model=FakeModelClient(),
        model_calls=FakeModelCallLog(db),
        publisher=FakePublisher(configured.max_event_bytes),
        limiter=FakeRateLimiter(clock),
        routes=FakeRoutes(db),
    )
