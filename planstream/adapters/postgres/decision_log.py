"""pipeline_decisions and the run's progress, written in batches, idempotently (asyncpg).

A decision row is unique per step attempt, so a replayed event inserts nothing; the run only
moves forward (a decision older than the newest one applied leaves it alone). A batch is two
statements in one transaction: the rows (pipelined by ``executemany``), then one set-based
UPDATE of the runs, each run moved to the newest decision of the batch.

``write`` returns the decisions the batch stored for the first time (a replay stores nothing),
each with when its step attempt was requested, so the sink counts every decision once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from planstream.domain.events import DecisionMade
from planstream.domain.steps import LAST_STEP

__all__ = [
    "DecisionLog",
    "Stored",
    "decision_row",
    "newest_per_run",
    "requested_at",
    "run_progress",
]

_INSERT = """
INSERT INTO pipeline_decisions (
    decision_id, run_id, step_id, attempt, idempotency_key, decision, schema_validations,
    rule_checks, llm_audit, retry_budget_remaining, block_reason, versions, created_at,
    decided_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (idempotency_key) DO NOTHING
"""

_ADVANCE_RUNS = """
UPDATE pipeline_runs AS r SET
    status = d.status, current_step = d.current_step, block_reason = d.block_reason,
    decided_step = d.step, decided_attempt = d.attempt, decided_review = d.review,
    updated_at = now()
FROM unnest($1::text[], $2::smallint[], $3::smallint[], $4::text[], $5::smallint[], $6::text[],
            $7::boolean[])
    AS d(run_id, step, attempt, status, current_step, block_reason, review)
WHERE r.run_id = d.run_id
  AND (r.decided_step, r.decided_attempt, r.decided_review) < (d.step, d.attempt, d.review)
"""


# The rows this transaction inserted (their xmin is its id): not those ON CONFLICT kept. With
# the events the step attempt's jobs keep (the request is the earliest) and the first job's time.
_STORED = """
SELECT d.decision_id,
       array(SELECT j.payload_ref #>> '{event,occurred_at}' FROM pipeline_jobs j
             WHERE j.run_id = d.run_id AND j.step_id = d.step_id AND j.attempt = d.attempt)
           AS event_times,
       (SELECT min(j.created_at) FROM pipeline_jobs j
        WHERE j.run_id = d.run_id AND j.step_id = d.step_id AND j.attempt = d.attempt)
           AS first_job_at
FROM pipeline_decisions d
WHERE d.decision_id = ANY($1::text[]) AND d.xmin = pg_current_xact_id()::xid
"""


@dataclass(frozen=True)
class Stored:
    """A decision stored for the first time, and when its step attempt was requested."""

    decision: DecisionMade
    requested_at: datetime | None


def requested_at(
    event_times: Sequence[str | None], first_job_at: datetime | None
) -> datetime | None:
    """When a step attempt was requested: the earliest event its jobs keep (the request), or
    the first job's creation when none is readable."""
    times = []
    for text in event_times:
        try:
            when = datetime.fromisoformat(text) if text else None
        except ValueError:
            continue
        if when is not None and when.tzinfo is not None:
            times.append(when)
    return min(times, default=first_job_at)


def decision_row(event: DecisionMade) -> tuple[Any, ...]:
    """The pipeline_decisions row of one decision."""
    versions = event.versions.model_dump() if event.versions else {}
    audit: dict[str, Any] = {
        "consistency_score": event.consistency_score,
        "contradictions": event.contradictions,
        "model": versions.get("model"),
        "prompt_version": versions.get("prompt"),
    }
    if event.audit_note is not None:
        audit["skipped"] = event.audit_note
    validations = (
        []
        if event.schema_valid is None
        else [{"schema": versions.get("spaces_schema"), "valid": event.schema_valid}]
    )
    checks = [failure.model_dump(mode="json") for failure in event.failures]
    return (
        event.event_id,
        event.run_id,
        event.step_id,
        event.attempt,
        event.idempotency_key,
        event.decision,
        validations,
        {"failure_count": event.failure_count, "failures": checks},
        audit,
        event.retry_budget_remaining,
        event.block_reason,
        versions,
        event.occurred_at,
        event.decided_by,
    )


def run_progress(event: DecisionMade) -> tuple[Any, ...]:
    """Where the decision leaves the run: status, current step, block reason."""
    step = event.step_id
    match event.decision:
        case "proceed" if step == LAST_STEP:
            status, current = "completed", step
        case "proceed":
            status, current = "running", step + 1
        case "retry":
            status, current = "running", step
        case "block" if event.decided_by == "reviewer":
            status, current = "rejected", step
        case "block":
            status, current = "blocked", step
    review = event.decided_by == "reviewer"
    return (event.run_id, step, event.attempt, status, current, event.block_reason, review)


def newest_per_run(ordered: Sequence[DecisionMade]) -> list[tuple[Any, ...]]:
    """Each run's progress from its newest decision in the batch, by (step, attempt, review);
    of equals the first wins, as applying them one by one in ``ordered`` would leave the run."""
    newest: dict[str, tuple[Any, ...]] = {}
    for decision in ordered:
        progress = run_progress(decision)
        held = newest.get(decision.run_id)
        if held is None or _rank(progress) > _rank(held):
            newest[decision.run_id] = progress
    return list(newest.values())


def _rank(progress: tuple[Any, ...]) -> tuple[int, int, bool]:
    """How decisions order a run: step, attempt, then a reviewer's over the model's."""
    return progress[1], progress[2], progress[6]


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    """Rows as one list per column (the arrays ``unnest`` takes)."""
    return [list(column) for column in zip(*rows, strict=True)]


class DecisionLog:
    """Writes batches of decisions in one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, decisions: Sequence[DecisionMade]) -> list[Stored]:
        """Store the batch; the decisions stored for the first time."""
        ordered = sorted(decisions, key=lambda d: (d.run_id, d.step_id, d.attempt))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT, [decision_row(d) for d in ordered])
            runs = newest_per_run(ordered)
            if runs:
                await conn.execute(_ADVANCE_RUNS, *_columns(runs))
            rows = await conn.fetch(_STORED, [d.event_id for d in ordered])
        by_id = {d.event_id: d for d in ordered}
        return [
            Stored(by_id[row["decision_id"]], requested_at(row["event_times"], row["first_job_at"]))
            for row in rows
        ]
