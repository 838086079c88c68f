"""Rows for the database figures: runs to hang decisions and jobs on, and decisions to write."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from planstream.domain.events import DecisionMade, ImageReady, StepRequested, Versions, step_key
from planstream.domain.ids import new_id

__all__ = ["decision", "image_ready", "reset_runs", "step_request"]


async def reset_runs(conn: asyncpg.Connection, count: int, bucket: str) -> list[str]:
    """Empty the run tables and copy in ``count`` fresh runs (with their uploads); their ids."""
    await conn.execute("TRUNCATE uploads, pipeline_runs, pipeline_jobs CASCADE")
    runs = [f"run_{uuid.uuid4().hex}" for _ in range(count)]
    uploads = [f"upl_{uuid.uuid4().hex}" for _ in range(count)]
    expires = datetime.now(UTC) + timedelta(minutes=5)
    await conn.copy_records_to_table(
        "uploads",
        records=[(u, bucket, f"uploads/{u}", "image/png", expires) for u in uploads],
        columns=["upload_id", "storage_bucket", "storage_path", "content_type", "put_expires_at"],
    )
    await conn.copy_records_to_table(
        "pipeline_runs",
        records=[(r, u, "4:3", "2K", "running") for r, u in zip(runs, uploads, strict=True)],
        columns=["run_id", "upload_id", "ratio", "quality_post_step4", "status"],
    )
    await conn.execute("ANALYZE uploads, pipeline_runs")
    return runs


def _first_step(run_id: str) -> dict[str, Any]:
    """The fields of a new event about the first attempt of a run's step 0."""
    return {
        "event_id": new_id("evt"),
        "run_id": run_id,
        "occurred_at": datetime.now(UTC),
        "step_id": 0,
        "attempt": 1,
        "idempotency_key": step_key(run_id, 0, 1),
    }


def step_request(run_id: str, artifact_id: str | None = None) -> StepRequested:
    """A step-0 request like the ingress publishes (a random source artifact id if none)."""
    return StepRequested(
        **_first_step(run_id),
        input_artifact_ids=[artifact_id or new_id("art")],
        requested_by="client",
    )


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


def decision(run_id: str) -> DecisionMade:
    """A step-0 proceed decision with an audit, shaped like the Supervisor's."""
    return DecisionMade(
        **_first_step(run_id),
        decision="proceed",
        block_reason=None,
        failures=[],
        failure_count=0,
        schema_valid=True,
        consistency_score=0.93,
        contradictions=[],
        retry_budget_remaining=2,
        image_artifact_id=new_id("art"),
        spaces_artifact_id=new_id("art"),
        versions=Versions(
            spaces_schema="spaces-v1",
            prompt="audit-v1",
            model="planstream-scripted-vision",
            rules="rules-v1",
        ),
    )
