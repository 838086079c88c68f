"""The run as the API shows it: the run with its jobs, artifacts, decisions and model costs."""

from typing import Any

import asyncpg

__all__ = ["run_view"]


async def run_view(pool: asyncpg.Pool, run_id: str) -> dict[str, Any] | None:
    """The run with its jobs, artifacts, decisions and model calls, as JSON-ready values;
    ``trace_id`` is the run's trace (null when none was kept)."""
    async with pool.acquire() as conn:
        run = await conn.fetchrow(
            "SELECT run_id, upload_id, ratio, ratio_locked, quality_post_step4, request_text,"
            " payload_size_estimate, status, current_step, block_reason, last_error,"
            " created_at, updated_at, substring(traceparent from 4 for 32) AS trace_id, owner"
            " FROM pipeline_runs WHERE run_id = $1",
            run_id,
        )
        if run is None:
            return None
        jobs = await conn.fetch(
            "SELECT job_id, step_id, attempt, service, status, attempts, max_attempts,"
            " payload_ref, result_ref, locked_by, lease_expires_at, lease_epoch,"
            " last_error, processing_time_ms, created_at, completed_at"
            " FROM pipeline_jobs WHERE run_id = $1 ORDER BY step_id, attempt, created_at",
            run_id,
        )
        # The cached signed URL is a bearer credential: only its expiry is shown.
        artifacts = await conn.fetch(
            "SELECT artifact_id, step_id, kind, storage_bucket, storage_path,"
            " signed_url_expires_at, metadata_json AS metadata, created_at"
            " FROM pipeline_artifacts WHERE run_id = $1 ORDER BY created_at",
            run_id,
        )
        decisions = await conn.fetch(
            "SELECT decision_id, step_id, attempt, decided_by, decision, schema_validations,"
            " rule_checks, llm_audit, retry_budget_remaining, block_reason, versions,"
            " created_at FROM pipeline_decisions WHERE run_id = $1"
            " ORDER BY step_id, attempt, decided_by = 'reviewer', created_at",
            run_id,
        )
        calls = await conn.fetch(
            "SELECT step_id, attempt, service, purpose, model, prompt_version, outcome,"
            " input_tokens, output_tokens, cost_usd, latency_ms, finish_reason, created_at,"
            " transport_attempt, waited_ms"
            " FROM pipeline_model_calls WHERE run_id = $1 ORDER BY created_at",
            run_id,
        )
    steps: dict[int, dict[str, Any]] = {}
    for call in calls:
        step = steps.setdefault(
            call["step_id"],
            {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "waited_ms": 0},
        )
        step["calls"] += 1
        step["waited_ms"] += call["waited_ms"]
        step["input_tokens"] += call["input_tokens"]
        step["output_tokens"] += call["output_tokens"]
        step["cost_usd"] += float(call["cost_usd"])
    return {
        **dict(run),
        "cost": {
            "total_usd": round(sum(step["cost_usd"] for step in steps.values()), 6),
            "by_step": {str(step_id): step for step_id, step in sorted(steps.items())},
        },
        "model_calls": [_with_wait(dict(r)) for r in calls],
        "jobs": [dict(r) for r in jobs],
        "artifacts": [dict(r) for r in artifacts],
        "decisions": [dict(r) for r in decisions],
    }


def _with_wait(call: dict[str, Any]) -> dict[str, Any]:
    """The call, with a line saying how long it queued for the rate limiter (from 1 s on)."""
    waited_s = call["waited_ms"] / 1000
    if waited_s >= 1:
        call["note"] = f"waited {waited_s:.0f} s for the model's rate limit"
    return call
