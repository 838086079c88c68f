"""DecisionLog against real PostgreSQL: the set-based run update leaves every run exactly as
applying the batch's decisions one by one would (the per-row statement it replaced)."""

from datetime import UTC, datetime
from typing import Any

import asyncpg

from planstream.adapters.postgres.decision_log import DecisionLog, run_progress
from planstream.adapters.postgres.repository import Repository
from planstream.domain.events import DecisionMade, step_key
from planstream.domain.ids import new_id
from planstream.domain.records import Run, Upload
from planstream.settings import Settings

# The per-row statement DecisionLog ran before, applied row by row in the same order: the oracle.
_ONE_BY_ONE = """
UPDATE pipeline_runs SET
    status = $4, current_step = $5, block_reason = $6,
    decided_step = $2, decided_attempt = $3, decided_review = $7, updated_at = now()
WHERE run_id = $1
  AND (decided_step, decided_attempt, decided_review) < ($2::smallint, $3::smallint, $7)
"""
_STATE = """
SELECT status, current_step, block_reason, decided_step, decided_attempt, decided_review
FROM pipeline_runs WHERE run_id = $1
"""


async def _run(repo: Repository, settings: Settings) -> str:
    upload_id, run_id = new_id("upl"), new_id("run")
    upload = Upload(
        upload_id, settings.s3_bucket, f"uploads/{upload_id}", "image/png", datetime.now(UTC)
    )
    await repo.create_upload(upload)
    run = Run(run_id, upload_id, "4:3", "2K", None, "pending", 0)
    await repo.create_run(run, upload, new_id("art"), 100)
    return run_id


def _decision(run_id: str, step: int, attempt: int, decision: str, **extra: Any) -> DecisionMade:
    block = "RULES_FAILED" if decision == "block" else None
    return DecisionMade.model_validate(
        {
            "event_id": new_id("evt"),
            "run_id": run_id,
            "occurred_at": datetime.now(UTC),
            "step_id": step,
            "attempt": attempt,
            "idempotency_key": step_key(run_id, step, attempt)
            + (":review" if extra.get("decided_by") == "reviewer" else ""),
            "decision": decision,
            "block_reason": block,
            "failure_count": 0,
            "schema_valid": True,
            "retry_budget_remaining": 2,
            **extra,
        }
    )


def _batches(a: str, b: str, c: str) -> list[list[DecisionMade]]:
    """Several decisions per run in one batch, out of order, a reviewer's, and a stale replay."""
    return [
        [
            _decision(a, 0, 2, "proceed"),
            _decision(a, 0, 1, "retry"),
            _decision(b, 1, 1, "block"),
            _decision(b, 1, 1, "proceed", decided_by="reviewer"),
            _decision(c, 0, 1, "proceed"),
        ],
        [_decision(a, 0, 1, "retry"), _decision(c, 1, 1, "retry"), _decision(c, 1, 2, "proceed")],
    ]


async def test_batch_update_matches_one_by_one(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    ours = [await _run(repo, settings) for _ in range(3)]
    oracle = [await _run(repo, settings) for _ in range(3)]
    log = DecisionLog(pool)
    for batch, reference in zip(_batches(*ours), _batches(*oracle), strict=True):
        await log.write(batch)
        await log.write(batch)  # a replayed batch changes nothing
        ordered = sorted(reference, key=lambda d: (d.run_id, d.step_id, d.attempt))
        async with pool.acquire() as conn:
            await conn.executemany(_ONE_BY_ONE, [run_progress(d) for d in ordered])
    for run_id, reference_id in zip(ours, oracle, strict=True):
        assert dict(await pool.fetchrow(_STATE, run_id)) == dict(
            await pool.fetchrow(_STATE, reference_id)
        )
    states = [tuple(await pool.fetchrow(_STATE, run_id)) for run_id in ours]
    assert states == [
        ("running", 1, None, 0, 2, False),
        ("running", 2, None, 1, 1, True),
        ("running", 2, None, 1, 2, False),
    ]
    stored = await pool.fetchval(
        "SELECT count(*) FROM pipeline_decisions WHERE run_id = ANY($1::text[])", ours
    )
    assert stored == 7  # the replayed (run a, step 0, attempt 1) inserts nothing
