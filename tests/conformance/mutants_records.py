"""Broken repositories and model-call logs, one fault each, that their suites must catch."""

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from planstream.domain.records import Artifact, Job, Upload
from planstream.ports import ModelCall, Purpose
from tests.conformance.fake_harnesses import FakeModelCallsHarness, FakeRepositoryHarness
from tests.conformance.model_calls import ModelCallLogContract
from tests.conformance.mutants import breaks
from tests.conformance.repository import RepositoryContract
from tests.fakes import FakeModelCallLog, FakeRepository
from tests.fakes.database import JobRow
from tests.fakes.repository import _job

__all__: list[str] = []

R = RepositoryContract
RH = FakeRepositoryHarness


@breaks(R, RH, "test_an_upload_reads_back")
class LosesTheContentType(FakeRepository):
    async def get_upload(self, upload_id: str) -> Upload | None:
        found = await super().get_upload(upload_id)
        return replace(found, content_type="image/png") if found else None


@breaks(R, RH, "test_a_run_reads_back_with_its_source_image")
class RendersOnlyAreStepImages(FakeRepository):
    async def step_image(self, run_id: str, step_id: int) -> str | None:
        found = await super().step_image(run_id, step_id)
        artifact = await self.artifact(found) if found else None
        return found if artifact and artifact.kind == "render_image" else None


@breaks(R, RH, "test_an_artifact_reads_back_and_unknown_ids_are_left_out")
class ReadsTheFirstArtifactOnly(FakeRepository):
    async def artifacts(self, artifact_ids: list[str]) -> dict[str, Artifact]:
        return await super().artifacts(artifact_ids[:1])


@breaks(R, RH, "test_one_stored_object_has_one_artifact_id")
class StoresEveryArtifactAnew(FakeRepository):
    async def store_artifact(self, artifact: Artifact) -> str:
        for row in list(self._db.artifacts.values()):
            if (row.storage_bucket, row.storage_path) == (
                artifact.storage_bucket,
                artifact.storage_path,
            ):
                del self._db.artifacts[row.artifact_id]
        return await super().store_artifact(artifact)


@breaks(R, RH, "test_metadata_is_merged_key_by_key")
class MergesDeeply(FakeRepository):
    async def merge_artifact_metadata(self, artifact_id: str, metadata: dict[str, Any]) -> None:
        row = self._db.artifacts.get(artifact_id)
        if row is not None:
            for key, value in metadata.items():
                old = row.metadata.get(key)
                merged = (
                    {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
                )
                row.metadata[key] = merged


@breaks(R, RH, "test_a_signed_url_is_cached_on_the_artifact")
class ForgetsSignedUrls(FakeRepository):
    async def cache_signed_url(self, artifact_id: str, url: str, expires_at: datetime) -> None:
        return None


@breaks(R, RH, "test_a_checked_copy_becomes_the_artifacts_object")
class KeepsTheUploadedObject(FakeRepository):
    async def use_checked_copy(
        self, artifact_id: str, storage_bucket: str, storage_path: str, metadata: dict[str, Any]
    ) -> None:
        row = self._db.artifacts.get(artifact_id)
        if row is not None:
            row.signed_url_cached, row.signed_url_expires_at = None, None


@breaks(R, RH, "test_a_checked_copy_becomes_the_artifacts_object")
class KeepsTheUploadsSignedUrl(FakeRepository):
    async def use_checked_copy(
        self, artifact_id: str, storage_bucket: str, storage_path: str, metadata: dict[str, Any]
    ) -> None:
        row = self._db.artifacts.get(artifact_id)
        if row is not None:
            row.storage_bucket, row.storage_path = storage_bucket, storage_path


@breaks(R, RH, "test_a_checked_copy_becomes_the_artifacts_object")
class ForgetsTheCheckedFacts(FakeRepository):
    async def use_checked_copy(
        self, artifact_id: str, storage_bucket: str, storage_path: str, metadata: dict[str, Any]
    ) -> None:
        await super().use_checked_copy(artifact_id, storage_bucket, storage_path, {})


@breaks(R, RH, "test_a_steps_image_is_its_newest_render")
class OldestStepImage(FakeRepository):
    async def step_image(self, run_id: str, step_id: int) -> str | None:
        rows = [
            a
            for a in self._db.artifacts.values()
            if a.run_id == run_id and a.step_id == step_id and a.kind != "spaces_json"
        ]
        return min(rows, key=lambda a: a.created).artifact_id if rows else None


@breaks(R, RH, "test_a_failed_run_keeps_why")
class NeverFailsRuns(FakeRepository):
    async def fail_run(self, run_id: str, error: str) -> None:
        return None


@breaks(R, RH, "test_a_blocked_step_is_the_newest_decision")
class BlockedAtTheLastWrittenDecision(FakeRepository):
    async def blocked_step(self, run_id: str) -> tuple[int, int] | None:
        rows = [d for d in self._db.decisions if d.run_id == run_id]
        return (rows[-1].step_id, rows[-1].attempt) if rows else None


@breaks(R, RH, "test_a_step_is_requested_and_published_once")
class PublishesEveryRequest(FakeRepository):
    async def request_step(
        self,
        job: Job,
        *,
        request_key: str,
        payload_ref: dict[str, Any],
        max_attempts: int,
        publish: Callable[[], Awaitable[None]],
    ) -> tuple[Job, bool]:
        made, created = await super().request_step(
            job,
            request_key=request_key,
            payload_ref=payload_ref,
            max_attempts=max_attempts,
            publish=publish,
        )
        if not created:
            await publish()
        return made, created


@breaks(R, RH, "test_a_request_whose_publish_fails_is_published_by_its_retry")
class KeepsTheClaimOfAFailedPublish(FakeRepository):
    async def request_step(
        self,
        job: Job,
        *,
        request_key: str,
        payload_ref: dict[str, Any],
        max_attempts: int,
        publish: Callable[[], Awaitable[None]],
    ) -> tuple[Job, bool]:
        try:
            return await super().request_step(
                job,
                request_key=request_key,
                payload_ref=payload_ref,
                max_attempts=max_attempts,
                publish=publish,
            )
        except Exception:
            stored = self._db.job_by_key(job.idempotency_key)
            if stored is not None:
                stored.published_at = self._db.now()  # the claim is never given back
            raise


@breaks(R, RH, "test_concurrent_requests_publish_once")
class ClaimsOnlyOncePublished(FakeRepository):
    async def request_step(
        self,
        job: Job,
        *,
        request_key: str,
        payload_ref: dict[str, Any],
        max_attempts: int,
        publish: Callable[[], Awaitable[None]],
    ) -> tuple[Job, bool]:
        created = self._db.job_by_key(job.idempotency_key) is None
        if created:
            now = self._db.now()
            self._db.jobs[job.job_id] = JobRow(
                job.job_id, job.run_id, job.step_id, job.attempt, job.service,
                job.idempotency_key, dict(payload_ref), max_attempts, now, now,
                request_key=request_key,
            )  # fmt: skip
        stored = self._db.job_by_key(job.idempotency_key)
        assert stored is not None
        if stored.published_at is None:
            await publish()  # checked, published, and only then marked: two can publish
            stored.published_at = self._db.now()
        return _job(stored), created


@breaks(R, RH, "test_a_job_without_its_event_has_none")
class ReadsAnyRefAsAnEvent(FakeRepository):
    async def job_event(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        row = self._db.jobs.get(job_id)
        if row is None:
            return None
        return row.payload_ref.get("topic", ""), row.payload_ref.get("event", {})


M = ModelCallLogContract
MH = FakeModelCallsHarness


@breaks(M, MH, "test_calls_count_within_their_window")
class CountsEveryAttempt(FakeModelCallLog):
    async def count(
        self, run_id: str, step_id: int, purpose: Purpose, attempts: tuple[int, int]
    ) -> int:
        return await super().count(run_id, step_id, purpose, (1, 30))


@breaks(M, MH, "test_a_started_call_is_completed_not_counted_twice")
class KeepsTheFirstWrite(FakeModelCallLog):
    async def record(self, call: ModelCall) -> None:
        self._db.model_calls.setdefault(call.call_id, call)


@breaks(M, MH, "test_a_completed_call_is_kept")
class LastWriteWins(FakeModelCallLog):
    async def record(self, call: ModelCall) -> None:
        self._db.model_calls[call.call_id] = call


@breaks(M, MH, "test_the_answer_is_written_with_the_completion")
class DropsTheAnswer(FakeModelCallLog):
    async def record(self, call: ModelCall) -> None:
        await super().record(replace(call, answer=None))


@breaks(M, MH, "test_transport_retries_are_part_of_their_call")
class CountsEveryTransportTry(FakeModelCallLog):
    async def record(self, call: ModelCall) -> None:
        await super().record(replace(call, transport_attempt=1))


@breaks(R, RH, "test_only_the_claiming_review_holds_a_block")
class AnyReviewOfABlock(FakeRepository):
    async def review_claimed(self, run_id: str, step_id: int, attempt: int, event_id: str) -> bool:
        return (run_id, step_id, attempt) in self._db.review_claims
