"""pipeline_decisions and the run's progress, written in batches, idempotently (asyncpg).

A decision row is unique per step attempt, so a replayed event inserts nothing; the run only
moves forward (a decision older than the newest one applied leaves it alone).
"""

from collections.abc import Sequence
from typing import Any

import asyncpg

from planstream.events import DecisionMade
from planstream.steps import LAST_STEP

__all__ = ["DecisionLog", "decision_row", "run_progress"]

_INSERT = """
INSERT INTO pipeline_decisions (
    decision_id, run_id, step_id, attempt, idempotency_key, decision, schema_validations,
    rule_checks, llm_audit, retry_budget_remaining, block_reason, versions, created_at,
    decided_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (idempotency_key) DO NOTHING
"""

_ADVANCE_RUN = """
UPDATE pipeline_runs SET
    status = $4, current_step = $5, block_reason = $6,
    decided_step = $2, decided_attempt = $3, decided_review = $7, updated_at = now()
WHERE run_id = $1
  AND (decided_step, decided_attempt, decided_review) < ($2::smallint, $3::smallint, $7)
"""


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


class DecisionLog:
    """Writes batches of decisions in one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def write(self, decisions: Sequence[DecisionMade]) -> None:
        ordered = sorted(decisions, key=lambda d: (d.run_id, d.step_id, d.attempt))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT, [decision_row(d) for d in ordered])
            await conn.executemany(_ADVANCE_RUN, [run_progress(d) for d in ordered])
