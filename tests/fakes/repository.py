"""planstream's records in memory, query for query as ``adapters/postgres/repository.py``."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from planstream.domain.records import Artifact, Job, Run, Upload
from tests.fakes.database import (
    ArtifactRow,
    FakeDatabase,
    FakeIntegrityError,
    JobRow,
    RunRow,
    jsonb,
)

__all__ = ["FakeRepository"]


def _job(row: JobRow) -> Job:
    return Job(
        job_id=row.job_id,
        run_id=row.run_id,
        step_id=row.step_id,
        attempt=row.attempt,
        service=row.service,
        status=row.status,
        idempotency_key=row.idempotency_key,
        published_at=row.published_at,
    )


def _artifact(row: ArtifactRow) -> Artifact:
    return Artifact(
        artifact_id=row.artifact_id,
        run_id=row.run_id,
        step_id=row.step_id,
        kind=row.kind,
        storage_bucket=row.storage_bucket,
        storage_path=row.storage_path,
        metadata=jsonb(row.metadata),
        signed_url_cached=row.signed_url_cached,
        signed_url_expires_at=row.signed_url_expires_at,
    )


class FakeRepository:
    """``Repository`` over a ``FakeDatabase``; every write that repeats is idempotent."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    async def create_upload(self, upload: Upload) -> None:
        """Record an upload slot whose presigned POST form was handed to a client."""
        if upload.upload_id in self._db.uploads:
            raise FakeIntegrityError(f"upload {upload.upload_id} exists (primary key)")
        self._db.uploads[upload.upload_id] = upload

    async def get_upload(self, upload_id: str) -> Upload | None:
        return self._db.uploads.get(upload_id)

    async def create_run(
        self, run: Run, upload: Upload, source_artifact_id: str, payload_size_estimate: int
    ) -> None:
        """Create the run and the artifact of its uploaded image, both or neither."""
        if run.run_id in self._db.runs:
            raise FakeIntegrityError(f"run {run.run_id} exists (primary key)")
        if run.upload_id not in self._db.uploads or upload.upload_id not in self._db.uploads:
            raise FakeIntegrityError(f"upload {run.upload_id} does not exist (foreign key)")
        if any(row.upload_id == run.upload_id for row in self._db.runs.values()):
            raise FakeIntegrityError(f"upload {run.upload_id} already has a run (unique key)")
        self._check_artifact_keys(source_artifact_id, upload.storage_bucket, upload.storage_path)
        self._db.runs[run.run_id] = RunRow(
            run_id=run.run_id,
            upload_id=run.upload_id,
            ratio=run.ratio,
            quality_post_step4=run.quality_post_step4,
            request_text=run.request_text,
            status=run.status,
            payload_size_estimate=payload_size_estimate,
            updated_at=self._db.now(),
        )
        self._db.artifacts[source_artifact_id] = ArtifactRow(
            artifact_id=source_artifact_id,
            run_id=run.run_id,
            step_id=0,
            kind="source_image",
            storage_bucket=upload.storage_bucket,
            storage_path=upload.storage_path,
            created=self._db.stamp(),
            upload_id=upload.upload_id,
        )

    async def get_run(self, run_id: str) -> Run | None:
        return self._db.run(run_id)

    async def job_event(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """The topic and event a job was made from (kept for re-drives and retries)."""
        row = self._db.jobs.get(job_id)
        if row is None or not row.payload_ref or "topic" not in row.payload_ref:
            return None
        ref = jsonb(row.payload_ref)
        return ref["topic"], ref["event"]

    async def blocked_step(self, run_id: str) -> tuple[int, int] | None:
        """The step and attempt a blocked run stopped at (its newest decision)."""
        rows = [d for d in self._db.decisions if d.run_id == run_id]
        if not rows:
            return None
        newest = max(rows, key=lambda d: (d.step_id, d.attempt, d.created))
        return newest.step_id, newest.attempt

    async def review_claimed(self, run_id: str, step_id: int, attempt: int, event_id: str) -> bool:
        return self._db.review_claims.get((run_id, step_id, attempt)) == event_id

    async def step_image(self, run_id: str, step_id: int) -> str | None:
        """The image a step analysed: the upload for step 0, the step's render after."""
        rows = [
            a
            for a in self._db.artifacts.values()
            if a.run_id == run_id
            and a.step_id == step_id
            and a.kind in ("source_image", "render_image")
        ]
        return max(rows, key=lambda a: a.created).artifact_id if rows else None

    async def fail_run(self, run_id: str, error: str) -> None:
        """End a run that cannot go on (terminal ``failed``), keeping why."""
        row = self._db.runs.get(run_id)
        if row is not None and row.status not in ("completed", "rejected"):
            row.status, row.last_error, row.updated_at = "failed", error, self._db.now()

    async def source_artifact_id(self, run_id: str) -> str | None:
        rows = [
            a
            for a in self._db.artifacts.values()
            if a.run_id == run_id and a.kind == "source_image"
        ]
        return min(rows, key=lambda a: a.created).artifact_id if rows else None

    async def request_step(
        self,
        job: Job,
        *,
        request_key: str,
        payload_ref: dict[str, Any],
        max_attempts: int,
        publish: Callable[[], Awaitable[None]],
    ) -> tuple[Job, bool]:
        """Create a step's pending job and publish its request once; (job, created).

        As in PostgreSQL: the job is stored first, whoever claims its ``published_at`` publishes,
        and a publish that raises gives the claim back, so the caller's retry publishes.
        """
        db = self._db
        taken = (
            job.job_id in db.jobs
            or db.job_by_key(job.idempotency_key) is not None
            or self._requested(job.run_id, request_key) is not None
        )
        if not taken:
            db.require_run(job.run_id)
            now = db.now()
            row = JobRow(
                job_id=job.job_id,
                run_id=job.run_id,
                step_id=job.step_id,
                attempt=job.attempt,
                service=job.service,
                idempotency_key=job.idempotency_key,
                payload_ref=jsonb(payload_ref),
                max_attempts=max_attempts,
                created_at=now,
                updated_at=now,
                request_key=request_key,
            )
            db.jobs[row.job_id] = row
        stored = self._requested(job.run_id, request_key) or db.job_by_key(job.idempotency_key)
        assert stored is not None, "a conflicting job vanished"
        if stored.published_at is None and stored.status == "pending":
            stored.published_at = db.now()
            try:
                await publish()
            except BaseException:
                stored.published_at = None
                raise
        return _job(stored), not taken

    async def artifacts(self, artifact_ids: list[str]) -> dict[str, Artifact]:
        rows = self._db.artifacts
        return {i: _artifact(rows[i]) for i in dict.fromkeys(artifact_ids) if i in rows}

    async def artifact(self, artifact_id: str) -> Artifact | None:
        return (await self.artifacts([artifact_id])).get(artifact_id)

    async def store_artifact(self, artifact: Artifact) -> str:
        """Record an artifact; one stored object has one artifact id, whoever records it again."""
        for row in self._db.artifacts.values():
            if (row.storage_bucket, row.storage_path) == (
                artifact.storage_bucket,
                artifact.storage_path,
            ):
                return row.artifact_id
        self._check_artifact_keys(
            artifact.artifact_id, artifact.storage_bucket, artifact.storage_path
        )
        if artifact.run_id is not None:
            self._db.require_run(artifact.run_id)
        self._db.artifacts[artifact.artifact_id] = ArtifactRow(
            artifact_id=artifact.artifact_id,
            run_id=artifact.run_id,
            step_id=artifact.step_id,
            kind=artifact.kind,
            storage_bucket=artifact.storage_bucket,
            storage_path=artifact.storage_path,
            created=self._db.stamp(),
            metadata=jsonb(artifact.metadata),
        )
        return artifact.artifact_id

    async def merge_artifact_metadata(self, artifact_id: str, metadata: dict[str, Any]) -> None:
        """``metadata_json || $2``: the new keys replace old ones, the others stay."""
        row = self._db.artifacts.get(artifact_id)
        if row is not None:
            row.metadata = {**row.metadata, **jsonb(metadata)}

    async def cache_signed_url(self, artifact_id: str, url: str, expires_at: datetime) -> None:
        row = self._db.artifacts.get(artifact_id)
        if row is not None:
            row.signed_url_cached, row.signed_url_expires_at = url, expires_at

    async def use_checked_copy(
        self, artifact_id: str, storage_bucket: str, storage_path: str, metadata: dict[str, Any]
    ) -> None:
        """Point the artifact at Image I/O's immutable copy, the facts merged into its metadata;
        the old object's URL is dropped."""
        row = self._db.artifacts.get(artifact_id)
        if row is None:
            return
        if any(
            (a.storage_bucket, a.storage_path) == (storage_bucket, storage_path)
            for a in self._db.artifacts.values()
            if a.artifact_id != artifact_id
        ):
            raise FakeIntegrityError(f"an artifact of {storage_bucket}/{storage_path} exists")
        row.storage_bucket, row.storage_path = storage_bucket, storage_path
        row.metadata = {**row.metadata, **jsonb(metadata)}
        row.signed_url_cached, row.signed_url_expires_at = None, None

    def _requested(self, run_id: str, request_key: str) -> JobRow | None:
        return next(
            (
                j
                for j in self._db.jobs.values()
                if j.run_id == run_id and j.request_key == request_key
            ),
            None,
        )

    def _check_artifact_keys(self, artifact_id: str, bucket: str, path: str) -> None:
        if artifact_id in self._db.artifacts:
            raise FakeIntegrityError(f"artifact {artifact_id} exists (primary key)")
        if any(
            (a.storage_bucket, a.storage_path) == (bucket, path)
            for a in self._db.artifacts.values()
        ):
            raise FakeIntegrityError(f"an artifact of {bucket}/{path} exists (unique key)")
