"""What the services and the ingress rely on from the records: runs and their source image,
artifacts keyed by their stored object, metadata merged, jobs requested exactly once."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest

from planstream.domain.errors import RetryableError
from planstream.domain.ids import new_id
from planstream.domain.records import Artifact, ArtifactKind, Job, Run, Upload
from planstream.ports import Repository

__all__ = ["FullRepository", "RepositoryContract", "RepositoryHarness", "make_run"]


class FullRepository(Repository, Protocol):
    """The port plus what the ingress uses of the same adapter."""

    async def create_upload(self, upload: Upload) -> None: ...

    async def get_upload(self, upload_id: str) -> Upload | None: ...

    async def create_run(
        self, run: Run, upload: Upload, source_artifact_id: str, payload_size_estimate: int
    ) -> None: ...

    async def source_artifact_id(self, run_id: str) -> str | None: ...

    async def request_step(
        self,
        job: Job,
        *,
        request_key: str,
        payload_ref: dict[str, Any],
        max_attempts: int,
        publish: Callable[[], Awaitable[None]],
    ) -> tuple[Job, bool]: ...


class RepositoryHarness(Protocol):
    @property
    def repo(self) -> FullRepository: ...

    @property
    def bucket(self) -> str: ...

    async def record_decision(self, run_id: str, step_id: int, attempt: int) -> None:
        """A decision row, as the decisions sink writes it (no port writes decisions)."""

    async def claim_review(self, run_id: str, step_id: int, attempt: int, event_id: str) -> None:
        """A review's claim on a block, as the ingress takes it (no port takes claims)."""


async def make_run(
    repo: FullRepository, bucket: str, request_text: str | None = None
) -> tuple[Run, str]:
    """A new run (and its upload and source artifact): the run and the source artifact id."""
    upload_id, run_id, source_id = new_id("upl"), new_id("run"), new_id("art")
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    upload = Upload(upload_id, bucket, f"uploads/{upload_id}.png", "image/png", expires)
    await repo.create_upload(upload)
    run = Run(run_id, upload_id, "4:3", "2K", request_text, "pending", 0)
    await repo.create_run(run, upload, source_id, 1_234)
    return run, source_id


def _artifact(
    run_id: str, bucket: str, kind: ArtifactKind = "spaces_json", step: int = 0
) -> Artifact:
    path = f"runs/{run_id}/step-{step}/{kind}-{new_id('art')[4:]}.json"
    return Artifact(
        new_id("art"), run_id, step, kind, bucket, path, {"sha256": "ab", "n": {"a": 1}}
    )


def _job(run_id: str, attempt: int = 1) -> Job:
    key = f"image_io:{run_id}:s0:a{attempt}"
    return Job(new_id("job"), run_id, 0, attempt, "image_io", "pending", key, None)


class _Publishes:
    """A publish callback that counts its calls, and fails while ``failing``."""

    def __init__(self, failing: bool = False) -> None:
        self.calls = 0
        self.failing = failing

    async def __call__(self) -> None:
        self.calls += 1
        if self.failing:
            raise RetryableError("Kafka did not take the event")


class RepositoryContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_an_upload_reads_back(self, harness: RepositoryHarness) -> None:
        upload_id = new_id("upl")
        moment = datetime(2030, 1, 1, 8, 30, tzinfo=UTC)
        upload = Upload(upload_id, harness.bucket, f"uploads/{upload_id}", "image/jpeg", moment)
        await harness.repo.create_upload(upload)
        assert await harness.repo.get_upload(upload_id) == upload
        assert await harness.repo.get_upload(new_id("upl")) is None

    async def test_a_run_reads_back_with_its_source_image(self, harness: RepositoryHarness) -> None:
        repo = harness.repo
        run, source_id = await make_run(repo, harness.bucket, "two bedrooms")
        assert await repo.get_run(run.run_id) == run
        assert await repo.get_run(new_id("run")) is None
        assert await repo.source_artifact_id(run.run_id) == source_id
        assert await repo.step_image(run.run_id, 0) == source_id
        source = await repo.artifact(source_id)
        assert source is not None
        assert (source.run_id, source.step_id, source.kind) == (run.run_id, 0, "source_image")
        upload = await repo.get_upload(run.upload_id)
        assert upload is not None
        assert (source.storage_bucket, source.storage_path) == (
            upload.storage_bucket,
            upload.storage_path,
        )

    async def test_an_artifact_reads_back_and_unknown_ids_are_left_out(
        self, harness: RepositoryHarness
    ) -> None:
        run, source_id = await make_run(harness.repo, harness.bucket)
        stored = _artifact(run.run_id, harness.bucket)
        assert await harness.repo.store_artifact(stored) == stored.artifact_id
        assert await harness.repo.artifact(stored.artifact_id) == stored
        missing = new_id("art")
        found = await harness.repo.artifacts([stored.artifact_id, missing, source_id])
        assert set(found) == {stored.artifact_id, source_id}
        assert await harness.repo.artifact(missing) is None

    async def test_one_stored_object_has_one_artifact_id(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        first = _artifact(run.run_id, harness.bucket)
        again = Artifact(
            new_id("art"), run.run_id, 0, first.kind, first.storage_bucket, first.storage_path
        )
        assert await harness.repo.store_artifact(first) == first.artifact_id
        assert await harness.repo.store_artifact(again) == first.artifact_id
        assert await harness.repo.artifact(again.artifact_id) is None

    async def test_metadata_is_merged_key_by_key(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        stored = _artifact(run.run_id, harness.bucket)
        await harness.repo.store_artifact(stored)
        await harness.repo.merge_artifact_metadata(
            stored.artifact_id, {"n": {"width_px": 2}, "within_band": True}
        )
        found = await harness.repo.artifact(stored.artifact_id)
        assert found is not None
        assert found.metadata == {"sha256": "ab", "n": {"width_px": 2}, "within_band": True}

    async def test_a_signed_url_is_cached_on_the_artifact(self, harness: RepositoryHarness) -> None:
        _, source_id = await make_run(harness.repo, harness.bucket)
        expires = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=600)
        await harness.repo.cache_signed_url(source_id, "http://s3/x?sig=1", expires)
        found = await harness.repo.artifact(source_id)
        assert found is not None
        assert (found.signed_url_cached, found.signed_url_expires_at) == (
            "http://s3/x?sig=1",
            expires,
        )

    async def test_a_checked_copy_becomes_the_artifacts_object(
        self, harness: RepositoryHarness
    ) -> None:
        run, source_id = await make_run(harness.repo, harness.bucket)
        expires = datetime(2030, 1, 1, tzinfo=UTC)
        await harness.repo.cache_signed_url(source_id, "http://s3/upload?sig=1", expires)
        copy = f"runs/{run.run_id}/source-{'ab' * 32}.png"
        await harness.repo.merge_artifact_metadata(source_id, {"kept": 1, "width_px": 1})
        facts = {"width_px": 2400, "format": "PNG"}
        await harness.repo.use_checked_copy(source_id, harness.bucket, copy, facts)
        found = await harness.repo.artifact(source_id)
        assert found is not None
        assert {k: found.metadata.get(k) for k in ("kept", "width_px", "format")} == {
            "kept": 1,
            "width_px": 2400,
            "format": "PNG",
        }
        assert (found.storage_bucket, found.storage_path, found.kind) == (
            harness.bucket,
            copy,
            "source_image",
        )
        assert (found.signed_url_cached, found.signed_url_expires_at) == (None, None)
        assert await harness.repo.source_artifact_id(run.run_id) == source_id

    async def test_a_steps_image_is_its_newest_render(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        assert await harness.repo.step_image(run.run_id, 1) is None
        older = _artifact(run.run_id, harness.bucket, "render_image", 1)
        newer = _artifact(run.run_id, harness.bucket, "render_image", 1)
        await harness.repo.store_artifact(older)
        await harness.repo.store_artifact(_artifact(run.run_id, harness.bucket, "spaces_json", 1))
        await harness.repo.store_artifact(newer)
        assert await harness.repo.step_image(run.run_id, 1) == newer.artifact_id

    async def test_a_failed_run_keeps_why(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        await harness.repo.fail_run(run.run_id, "the Supervisor's job ran out of deliveries")
        found = await harness.repo.get_run(run.run_id)
        assert found is not None and found.status == "failed"

    async def test_a_blocked_step_is_the_newest_decision(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        assert await harness.repo.blocked_step(run.run_id) is None
        for step, attempt in ((0, 1), (1, 1), (0, 3), (0, 2)):
            await harness.record_decision(run.run_id, step, attempt)
        assert await harness.repo.blocked_step(run.run_id) == (1, 1)

    async def test_only_the_claiming_review_holds_a_block(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        claimant, other = new_id("evt"), new_id("evt")
        assert not await harness.repo.review_claimed(run.run_id, 0, 3, claimant)
        await harness.claim_review(run.run_id, 0, 3, claimant)
        assert await harness.repo.review_claimed(run.run_id, 0, 3, claimant)
        assert not await harness.repo.review_claimed(run.run_id, 0, 3, other)
        assert not await harness.repo.review_claimed(run.run_id, 0, 6, claimant)  # another block

    async def test_a_step_is_requested_and_published_once(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        publish = _Publishes()
        ref = {"topic": "planstream.step.requested.v1", "event": {"run_id": run.run_id}}
        job = _job(run.run_id)
        made, created = await harness.repo.request_step(
            job, request_key="k-1", payload_ref=ref, max_attempts=3, publish=publish
        )
        assert created is True and publish.calls == 1
        assert (made.job_id, made.status, made.idempotency_key) == (
            job.job_id,
            "pending",
            job.idempotency_key,
        )
        assert made.published_at is not None
        assert await harness.repo.job_event(job.job_id) == (ref["topic"], ref["event"])
        twin = _job(run.run_id, attempt=2)  # another step attempt under the same client key
        found, created = await harness.repo.request_step(
            twin, request_key="k-1", payload_ref=ref, max_attempts=3, publish=publish
        )
        assert (found.job_id, created, publish.calls) == (job.job_id, False, 1)

    async def test_a_request_whose_publish_fails_is_published_by_its_retry(
        self, harness: RepositoryHarness
    ) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        failing, working = _Publishes(failing=True), _Publishes()
        ref = {"topic": "planstream.step.requested.v1", "event": {"run_id": run.run_id}}
        job = _job(run.run_id)
        with pytest.raises(RetryableError):
            await harness.repo.request_step(
                job, request_key="k-1", payload_ref=ref, max_attempts=3, publish=failing
            )
        assert await harness.repo.job_event(job.job_id) == (ref["topic"], ref["event"])
        for _ in range(2):  # the retry publishes; the one after it finds it published
            made, created = await harness.repo.request_step(
                _job(run.run_id), request_key="k-1", payload_ref=ref, max_attempts=3,
                publish=working,
            )  # fmt: skip
            assert (made.job_id, created, working.calls) == (job.job_id, False, 1)

    async def test_concurrent_requests_publish_once(self, harness: RepositoryHarness) -> None:
        """Twenty callers at once with one key: one job, one publish, and nobody waits on it."""
        run, _ = await make_run(harness.repo, harness.bucket)
        ref = {"topic": "planstream.step.requested.v1", "event": {"run_id": run.run_id}}
        release = asyncio.Event()
        calls = 0

        async def slow_publish() -> None:
            nonlocal calls
            calls += 1
            await release.wait()

        async def request() -> tuple[Job, bool]:
            return await harness.repo.request_step(
                _job(run.run_id), request_key="k-9", payload_ref=ref, max_attempts=3,
                publish=slow_publish,
            )  # fmt: skip

        pending = [asyncio.ensure_future(request()) for _ in range(20)]
        done, _ = await asyncio.wait(pending, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert done, "a duplicate waited for the first caller's publish"
        release.set()
        answers = await asyncio.gather(*pending)
        assert calls == 1
        assert len({job.job_id for job, _ in answers}) == 1
        assert sum(created for _, created in answers) == 1

    async def test_a_job_without_its_event_has_none(self, harness: RepositoryHarness) -> None:
        run, _ = await make_run(harness.repo, harness.bucket)
        job = _job(run.run_id)
        await harness.repo.request_step(
            job, request_key="k-2", payload_ref={"note": 1}, max_attempts=3, publish=_Publishes()
        )
        assert await harness.repo.job_event(job.job_id) is None
        assert await harness.repo.job_event(new_id("job")) is None
