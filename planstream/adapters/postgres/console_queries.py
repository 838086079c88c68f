"""What the operator console reads from PostgreSQL beyond the run view: the blocked-run queue,
a run's leases, fenced writes, reviews and dead-letter redrives, and one artifact of one run.

Read-only, every value bound as a parameter; the callers validated the ids and filters first.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

__all__ = [
    "BlockedRun",
    "Queue",
    "StoredObject",
    "artifact_of_run",
    "blocked_runs",
    "redriven_letters",
    "run_extras",
]

# Each blocked run with the time its block was decided (the Supervisor's decision of the step
# attempt it stopped at), the model spend so far, and the review that holds its block, if any.
_QUEUE = """
SELECT r.run_id, r.block_reason, r.current_step AS step, r.decided_attempt AS attempts,
       coalesce(d.created_at, r.updated_at) AS blocked_at, r.created_at, r.owner,
       coalesce((SELECT sum(c.cost_usd) FROM pipeline_model_calls c WHERE c.run_id = r.run_id),
                0) AS cost_usd,
       v.action AS review_action, v.reviewer AS review_by
FROM pipeline_runs r
LEFT JOIN pipeline_decisions d
    ON d.run_id = r.run_id AND d.step_id = r.decided_step AND d.attempt = r.decided_attempt
   AND d.decided_by = 'supervisor'
LEFT JOIN run_reviews v
    ON v.run_id = r.run_id AND v.step_id = r.decided_step AND v.attempt = r.decided_attempt
WHERE r.status = 'blocked'
  AND ($1::text IS NULL OR r.block_reason = $1)
  AND ($2::smallint IS NULL OR r.current_step = $2)
ORDER BY blocked_at, r.run_id
LIMIT $3
"""

_REASONS = """
SELECT coalesce(block_reason, '') AS reason, count(*) AS runs
FROM pipeline_runs WHERE status = 'blocked' GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True)
class BlockedRun:
    """One row of the queue."""

    run_id: str
    block_reason: str | None
    step: int
    attempts: int
    blocked_at: datetime
    created_at: datetime
    owner: str | None
    cost_usd: float
    review_action: str | None
    review_by: str | None


@dataclass(frozen=True)
class Queue:
    """The blocked runs a filter selects (at most the limit), and every block reason's count."""

    runs: tuple[BlockedRun, ...]
    reasons: tuple[tuple[str, int], ...]

    @property
    def total(self) -> int:
        return sum(count for _, count in self.reasons)


@dataclass(frozen=True)
class StoredObject:
    """Where one artifact's object is, and what it is."""

    artifact_id: str
    kind: str
    bucket: str
    key: str


async def blocked_runs(
    pool: asyncpg.Pool, reason: str | None, step: int | None, limit: int
) -> Queue:
    """The blocked runs, oldest block first, filtered by block reason and step."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(_QUEUE, reason, step, limit)
        reasons = await conn.fetch(_REASONS)
    runs = tuple(BlockedRun(**{**dict(row), "cost_usd": float(row["cost_usd"])}) for row in rows)
    return Queue(runs, tuple((row["reason"], row["runs"]) for row in reasons))


async def run_extras(pool: asyncpg.Pool, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """What the run view leaves out: each job's redrives, the writes fenced off as stale (a
    zombie's, after a take-over), the reviews claimed, and the run's dead letters redriven."""
    async with pool.acquire() as conn:
        jobs = await conn.fetch(
            "SELECT job_id, redrives, redriven_at, locked_at FROM pipeline_jobs WHERE run_id = $1",
            run_id,
        )
        fenced = await conn.fetch(
            "SELECT j.step_id, j.attempt, j.service, s.presented_epoch, s.current_epoch,"
            " s.worker_id, s.attempted, s.refused_at"
            " FROM pipeline_stale_writes s JOIN pipeline_jobs j ON j.job_id = s.job_id"
            " WHERE j.run_id = $1 ORDER BY s.refused_at",
            run_id,
        )
        reviews = await conn.fetch(
            "SELECT step_id, attempt, event_id, action, reviewer, reason, claimed_at"
            " FROM run_reviews WHERE run_id = $1 ORDER BY claimed_at",
            run_id,
        )
        redrives = await conn.fetch(
            "SELECT dlq_partition, dlq_offset, source_topic, error, operator, reason, redriven_at"
            " FROM dead_letter_redrives WHERE run_id = $1 ORDER BY redriven_at",
            run_id,
        )
    return {
        "jobs": [dict(r) for r in jobs],
        "fenced": [dict(r) for r in fenced],
        "reviews": [dict(r) for r in reviews],
        "redrives": [dict(r) for r in redrives],
    }


async def artifact_of_run(pool: asyncpg.Pool, run_id: str, artifact_id: str) -> StoredObject | None:
    """The artifact when it belongs to ``run_id``; None otherwise (another run's is refused)."""
    row = await pool.fetchrow(
        "SELECT artifact_id, kind, storage_bucket, storage_path FROM pipeline_artifacts"
        " WHERE artifact_id = $1 AND run_id = $2",
        artifact_id,
        run_id,
    )
    if row is None:
        return None
    return StoredObject(row["artifact_id"], row["kind"], row["storage_bucket"], row["storage_path"])


async def redriven_letters(
    pool: asyncpg.Pool, letters: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, Any]]:
    """Which of the dead letters (partition, offset) were redriven: by whom, when and why."""
    if not letters:
        return {}
    rows = await pool.fetch(
        "SELECT dlq_partition, dlq_offset, operator, reason, redriven_at"
        " FROM dead_letter_redrives d"
        " JOIN unnest($1::integer[], $2::bigint[]) AS l(p, o)"
        " ON d.dlq_partition = l.p AND d.dlq_offset = l.o",
        [p for p, _ in letters],
        [o for _, o in letters],
    )
    return {(r["dlq_partition"], r["dlq_offset"]): dict(r) for r in rows}
