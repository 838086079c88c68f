"""planstream's PostgreSQL records: uploads, runs, jobs with leases, artifacts (asyncpg)."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, cast

import asyncpg

from planstream.adapters.postgres.quotas import RunQuota, check_run_quota
from planstream.domain.errors import Conflict
from planstream.domain.records import Artifact, Job, Run, Upload

__all__ = ["Repository"]

_JOB_COLUMNS = "job_id, run_id, step_id, attempt, service, status, idempotency_key, published_at"
_ARTIFACT_COLUMNS = (
    "artifact_id, run_id, step_id, kind, storage_bucket, storage_path, signed_url_cached,"
    " signed_url_expires_at, metadata_json"
)


def _job(row: asyncpg.Record) -> Job:
    return Job(**dict(row))


def _artifact(row: asyncpg.Record) -> Artifact:
    values = dict(row)
    values["metadata"] = values.pop("metadata_json")
    return Artifact(**values)


class Repository:
    """Queries over one asyncpg pool; every write that repeats is idempotent."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_upload(self, upload: Upload) -> None:
        """Record an upload slot whose presigned POST form was handed to a client."""
        await self._pool.execute(
            "INSERT INTO uploads (upload_id, storage_bucket, storage_path, content_type,"
            " put_expires_at, owner) VALUES ($1, $2, $3, $4, $5, $6)",
            upload.upload_id,
            upload.storage_bucket,
            upload.storage_path,
            upload.content_type,
            upload.put_expires_at,
            upload.owner,
        )

    async def get_upload(self, upload_id: str) -> Upload | None:
        row = await self._pool.fetchrow(
            "SELECT upload_id, storage_bucket, storage_path, content_type, put_expires_at,"
            " owner FROM uploads WHERE upload_id = $1",
            upload_id,
        )
        return Upload(**dict(row)) if row else None

    async def create_run(
        self,
        run: Run,
        upload: Upload,
        source_artifact_id: str,
        payload_size_estimate: int,
        traceparent: str | None = None,
        quota: RunQuota | None = None,
    ) -> None:
        """Create the run and the artifact of its uploaded image, in one transaction;
        ``traceparent`` names the run's trace (planstream.adapters.tracing). With ``quota``,
        the owner's runs are counted under a lock on the owner first (every ingress replica
        takes the same lock) and :class:`QuotaExceeded` is raised over either limit."""
        async with self._pool.acquire() as conn, conn.transaction():
            if quota is not None and run.owner is not None:
                await check_run_quota(conn, run.owner, quota)
            try:
                await conn.execute(
                    "INSERT INTO pipeline_runs (run_id, upload_id, ratio, quality_post_step4,"
                    " request_text, payload_size_estimate, status, traceparent, owner)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    run.run_id,
                    run.upload_id,
                    run.ratio,
                    run.quality_post_step4,
                    run.request_text,
                    payload_size_estimate,
                    run.status,
                    traceparent,
                    run.owner,
                )
            except asyncpg.UniqueViolationError as exc:  # one run per upload (migration 0010)
                if exc.constraint_name != "pipeline_runs_one_per_upload":
                    raise
                raise Conflict(f"upload {upload.upload_id} already has a run") from None
            await conn.execute(
                "INSERT INTO pipeline_artifacts (artifact_id, run_id, step_id, kind,"
                " upload_id, storage_bucket, storage_path)"
                " VALUES ($1, $2, 0, 'source_image', $3, $4, $5)",
                source_artifact_id,
                run.run_id,
                upload.upload_id,
                upload.storage_bucket,
                upload.storage_path,
            )

    async def run_traceparent(self, run_id: str) -> str | None:
        """The W3C traceparent of the run's trace (None: no such run, or none kept)."""
        value = await self._pool.fetchval(
            "SELECT traceparent FROM pipeline_runs WHERE run_id = $1", run_id
        )
        return cast(str | None, value)

    async def get_run(self, run_id: str) -> Run | None:
        row = await self._pool.fetchrow(
            "SELECT run_id, upload_id, ratio, quality_post_step4, request_text, status,"
            " current_step, owner FROM pipeline_runs WHERE run_id = $1",
            run_id,
        )
        return Run(**dict(row)) if row else None

    async def job_event(self, job_id: str) -> tuple[str, dict[str, Any]] | None:
        """The topic and event a job was made from (kept for re-drives and retries)."""
        ref = await self._pool.fetchval(
            "SELECT payload_ref FROM pipeline_jobs WHERE job_id = $1", job_id
        )
        if not ref or "topic" not in ref:
            return None
        return ref["topic"], ref["event"]

    async def blocked_step(self, run_id: str) -> tuple[int, int] | None:
        """The step and attempt a blocked run stopped at (its newest decision)."""
        row = await self._pool.fetchrow(
            "SELECT step_id, attempt FROM pipeline_decisions WHERE run_id = $1"
            " ORDER BY step_id DESC, attempt DESC, created_at DESC LIMIT 1",
            run_id,
        )
        return (row["step_id"], row["attempt"]) if row else None

    async def step_image(self, run_id: str, step_id: int) -> str | None:
        """The image a step analysed: the upload for step 0, the step's render after."""
        return cast(
            str | None,
            await self._pool.fetchval(
                "SELECT artifact_id FROM pipeline_artifacts WHERE run_id = $1 AND step_id = $2"
                " AND kind IN ('source_image', 'render_image') ORDER BY created_at DESC LIMIT 1",
                run_id,
                step_id,
            ),
        )

    async def fail_run(self, run_id: str, error: str) -> None:
        """End a run that cannot go on (terminal ``failed``), keeping why."""
        await self._pool.execute(
            "UPDATE pipeline_runs SET status = 'failed', last_error = $2, updated_at = now()"
            " WHERE run_id = $1 AND status NOT IN ('completed', 'rejected')",
            run_id,
            error,
        )

    async def review_claimed(self, run_id: str, step_id: int, attempt: int, event_id: str) -> bool:
        found = await self._pool.fetchval(
            "SELECT true FROM run_reviews"
            " WHERE run_id = $1 AND step_id = $2 AND attempt = $3 AND event_id = $4",
            run_id,
            step_id,
            attempt,
            event_id,
        )
        return found is True

    async def source_artifact_id(self, run_id: str) -> str | None:
        return cast(
            str | None,
            await self._pool.fetchval(
                "SELECT artifact_id FROM pipeline_artifacts"
                " WHERE run_id = $1 AND kind = 'source_image' ORDER BY created_at LIMIT 1",
                run_id,
            ),
        )

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

        The job is committed first (the job key, one per service and step attempt, and the
        caller's key, one per run, are both unique: a double click or a second caller finds it),
        then whoever claims its ``published_at`` publishes, outside any transaction: no
        connection waits on Kafka. A publish that fails gives the claim back, so the caller's
        retry (same key) publishes; a process that dies holding the claim leaves a pending job
        never leased, which the sweeper delivers after a lease period.
        """
        row = await self._pool.fetchrow(
            "INSERT INTO pipeline_jobs (job_id, run_id, step_id, attempt, service,"
            " idempotency_key, request_key, payload_ref, max_attempts)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            f" ON CONFLICT DO NOTHING RETURNING {_JOB_COLUMNS}",
            job.job_id,
            job.run_id,
            job.step_id,
            job.attempt,
            job.service,
            job.idempotency_key,
            request_key,
            payload_ref,
            max_attempts,
        )
        created = row is not None
        if row is None:
            row = await self._pool.fetchrow(
                f"SELECT {_JOB_COLUMNS} FROM pipeline_jobs"
                " WHERE idempotency_key = $1 OR (run_id = $2 AND request_key = $3)"
                " ORDER BY (request_key IS NOT DISTINCT FROM $3) DESC LIMIT 1",
                job.idempotency_key,
                job.run_id,
                request_key,
            )
            assert row is not None, "a conflicting job vanished"
        stored = _job(row)
        claimed = await self._pool.fetchval(
            "UPDATE pipeline_jobs SET published_at = now()"
            " WHERE job_id = $1 AND published_at IS NULL AND status = 'pending'"
            " RETURNING published_at",
            stored.job_id,
        )
        if claimed is not None:
            stored = replace(stored, published_at=claimed)
            try:
                await publish()
            except BaseException:  # cancelled too: the next request with the key publishes
                await asyncio.shield(self._unclaim(stored.job_id))
                raise
        return stored, created

    async def _unclaim(self, job_id: str) -> None:
        await self._pool.execute(
            "UPDATE pipeline_jobs SET published_at = NULL WHERE job_id = $1", job_id
        )

    async def artifacts(self, artifact_ids: list[str]) -> dict[str, Artifact]:
        rows = await self._pool.fetch(
            f"SELECT {_ARTIFACT_COLUMNS} FROM pipeline_artifacts WHERE artifact_id = ANY($1)",
            artifact_ids,
        )
        return {row["artifact_id"]: _artifact(row) for row in rows}

    async def artifact(self, artifact_id: str) -> Artifact | None:
        return (await self.artifacts([artifact_id])).get(artifact_id)

    async def store_artifact(self, artifact: Artifact) -> str:
        """Record an artifact; one stored object has one artifact id, whoever records it again."""
        return cast(
            str,
            await self._pool.fetchval(
                "INSERT INTO pipeline_artifacts (artifact_id, run_id, step_id, kind,"
                " storage_bucket, storage_path, metadata_json) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                " ON CONFLICT (storage_bucket, storage_path) DO UPDATE SET updated_at = now()"
                " RETURNING artifact_id",
                artifact.artifact_id,
                artifact.run_id,
                artifact.step_id,
                artifact.kind,
                artifact.storage_bucket,
                artifact.storage_path,
                artifact.metadata,
            ),
        )

    async def merge_artifact_metadata(self, artifact_id: str, metadata: dict[str, Any]) -> None:
        await self._pool.execute(
            "UPDATE pipeline_artifacts SET metadata_json = metadata_json || $2,"
            " updated_at = now() WHERE artifact_id = $1",
            artifact_id,
            metadata,
        )

    async def cache_signed_url(self, artifact_id: str, url: str, expires_at: datetime) -> None:
        await self._pool.execute(
            "UPDATE pipeline_artifacts SET signed_url_cached = $2, signed_url_expires_at = $3,"
            " updated_at = now() WHERE artifact_id = $1",
            artifact_id,
            url,
            expires_at,
        )

    async def use_checked_copy(
        self, artifact_id: str, storage_bucket: str, storage_path: str, metadata: dict[str, Any]
    ) -> None:
        """Point the artifact at Image I/O's immutable copy, the facts merged into its metadata
        (one statement); the old object's URL is dropped."""
        await self._pool.execute(
            "UPDATE pipeline_artifacts SET storage_bucket = $2, storage_path = $3,"
            " metadata_json = metadata_json || $4,"
            " signed_url_cached = NULL, signed_url_expires_at = NULL, updated_at = now()"
            " WHERE artifact_id = $1",
            artifact_id,
            storage_bucket,
            storage_path,
            metadata,
        )
