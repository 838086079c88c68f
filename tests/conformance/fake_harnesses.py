"""The harnesses that put the in-memory fakes through the conformance suites.

Each takes the class under test as a parameter (the fake by default), so the self-test can put
a deliberately broken subclass through the same suite.
"""

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from planstream.domain.events import Event, LegacyStepRequested, step_key
from planstream.domain.ids import new_id
from planstream.domain.legacy import code_of
from planstream.domain.records import Run, Upload
from planstream.ports import Clock
from tests.conformance.model import Call, Scenario
from tests.fakes import (
    FakeClock,
    FakeDatabase,
    FakeImaging,
    FakeJobLeases,
    FakeLegacyFunction,
    FakeModelCallLog,
    FakeModelClient,
    FakePublisher,
    FakeRateLimiter,
    FakeRepository,
    FakeRoutes,
    FakeStorage,
    chat_answer,
    fake_image,
    legacy_error,
    refused,
    server_error,
    throttled,
    timed_out,
    unreachable,
)
from topics import TopicSpec

__all__ = [
    "FakeClockHarness",
    "FakeImagingHarness",
    "FakeLeasesHarness",
    "FakeLegacyHarness",
    "FakeModelCallsHarness",
    "FakeModelHarness",
    "FakePublisherHarness",
    "FakeRateLimiterHarness",
    "FakeRepositoryHarness",
    "FakeRoutesHarness",
    "FakeStorageHarness",
]


async def _new_run(db: FakeDatabase) -> str:
    """A run made the way the ingress makes one, through the fake repository."""
    upload_id, run_id = new_id("upl"), new_id("run")
    upload = Upload(upload_id, "planstream", f"uploads/{upload_id}", "image/png", db.now())
    repo = FakeRepository(db)
    await repo.create_upload(upload)
    await repo.create_run(
        Run(run_id, upload_id, "4:3", "2K", None, "pending", 0), upload, new_id("art"), 1
    )
    return run_id


class FakeLeasesHarness:
    def __init__(self, kind: type[FakeJobLeases] = FakeJobLeases) -> None:
        self.db = FakeDatabase()
        self.leases = kind(self.db)

    async def new_run(self) -> str:
        return await _new_run(self.db)

    async def elapse(self, seconds: float) -> None:
        self.db.clock.advance(seconds)

    async def job(self, job_id: str) -> dict[str, Any]:
        assert job_id in self.db.jobs, f"no job {job_id}"
        return asdict(self.db.jobs[job_id])

    async def stale_writes(self, job_id: str) -> list[tuple[int, int, str, str]]:
        return [
            (w.presented_epoch, w.current_epoch, w.worker_id, w.attempted)
            for w in self.db.stale_writes
            if w.job_id == job_id
        ]


class FakeRepositoryHarness:
    bucket = "planstream"

    def __init__(self, kind: type[FakeRepository] = FakeRepository) -> None:
        self.db = FakeDatabase()
        self.repo = kind(self.db)

    async def record_decision(self, run_id: str, step_id: int, attempt: int) -> None:
        self.db.clock.advance(0.001)
        self.db.record_decision(run_id, step_id, attempt)

    async def claim_review(self, run_id: str, step_id: int, attempt: int, event_id: str) -> None:
        self.db.review_claims.setdefault((run_id, step_id, attempt), event_id)


class FakeStorageHarness:
    expected_bucket = "planstream-conformance"

    def __init__(self, kind: type[FakeStorage] = FakeStorage) -> None:
        self.storage = kind(self.expected_bucket)

    async def download(self, url: str) -> bytes:
        return self.storage.download(url)


class FakeModelCallsHarness:
    def __init__(self, kind: type[FakeModelCallLog] = FakeModelCallLog) -> None:
        self.db = FakeDatabase()
        self.log = kind(self.db)

    async def new_run(self) -> str:
        return await _new_run(self.db)

    async def outcome(self, call_id: str) -> str | None:
        call = self.db.model_calls.get(call_id)
        return call.outcome if call else None

    async def answer(self, call_id: str) -> str | None:
        call = self.db.model_calls.get(call_id)
        return call.answer if call else None


class FakeModelHarness:
    def __init__(self, kind: type[FakeModelClient] = FakeModelClient) -> None:
        self.client = kind()

    async def scenario(self, name: Scenario) -> Call:
        first: Exception | None = {
            "answer": None,
            "throttled": throttled(retry_after_s=1.0),
            "server_error": server_error(),
            "timeout": timed_out(),
            "unreachable": unreachable(),
            "refused": refused(400, "unknown response_format.json_schema.name"),
        }[name]
        answer = chat_answer({"mismatches": []}, input_tokens=90, output_tokens=6)
        self.client.script_chat(*([first] if first else []), answer)
        schema: dict[str, Any] = {"type": "object"}
        return Call(self.client, "planstream-scripted-vision", [], "request_comparison_v1", schema)

    async def image(self) -> tuple[FakeModelClient, str, bytes]:
        return self.client, "planstream-scripted-image", b"\x89PNG fake"


class FakePublisherHarness:
    def __init__(self, kind: type[FakePublisher] = FakePublisher) -> None:
        self.publisher = kind()

    async def read_back(self, spec: TopicSpec, run_id: str) -> list[tuple[bytes, Event]]:
        return [
            (p.key, p.event)
            for p in self.publisher.published
            if p.topic == spec.name and p.event.run_id == run_id
        ]


class FakeRateLimiterHarness:
    def __init__(self, kind: type[FakeRateLimiter] = FakeRateLimiter) -> None:
        self._clock = FakeClock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))
        self.limiter = kind(self._clock)

    def other(self) -> FakeRateLimiter:
        return self.limiter.sibling()

    async def elapse(self, seconds: float) -> None:
        self._clock.advance(seconds)


class FakeImagingHarness:
    def __init__(self, kind: type[FakeImaging] = FakeImaging) -> None:
        self.imaging = kind()

    def image(
        self, width: int, height: int, fmt: str = "PNG", orientation: int = 1, frames: int = 1
    ) -> bytes:
        return fake_image(width, height, fmt, orientation, frames)


class FakeClockHarness:
    def __init__(self, kind: type[FakeClock] = FakeClock) -> None:
        self._clock = kind(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))

    @property
    def clock(self) -> Clock:
        return self._clock

    async def elapse(self, seconds: float) -> None:
        self._clock.advance(seconds)


class FakeRoutesHarness:
    def __init__(self, kind: type[FakeRoutes] = FakeRoutes) -> None:
        self.db = FakeDatabase()
        self.routes = kind(self.db)

    def other(self) -> FakeRoutes:
        return self.routes.sibling()

    async def new_run(self) -> str:
        return await _new_run(self.db)


class FakeLegacyHarness:
    def __init__(self, kind: type[FakeLegacyFunction] = FakeLegacyFunction) -> None:
        self.db = FakeDatabase()
        repo = FakeRepository(self.db)
        self.function = kind(repo, FakeStorage("planstream"))

    async def request(self, *, foreign: bool = False) -> LegacyStepRequested:
        run_id = await _new_run(self.db)
        image_of = await _new_run(self.db) if foreign else run_id
        image = next(a.artifact_id for a in self.db.artifacts.values() if a.run_id == image_of)
        return LegacyStepRequested(
            event_id=new_id("evt"),
            run_id=run_id,
            occurred_at=self.db.now(),
            step_id=0,
            attempt=1,
            idempotency_key=step_key(run_id, 0, 1),
            input_artifact_ids=[image],
            quality="2K",
            requested_by="client",
        )

    async def script(self, status: int) -> None:
        self.function.script(legacy_error(code_of(status)))
