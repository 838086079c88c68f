"""Review claims: one review per block of a run, taken atomically against the run's state.

A run is blocked at one step attempt (``pipeline_runs.decided_step``/``decided_attempt``). A
review claims that block in one statement — a row unique per run and step attempt, inserted
only while the run is blocked — before its ``RunReviewed`` is published, so of two concurrent
reviews exactly one goes on and the other is refused with why (the run is not blocked, or the
block is already being reviewed). The claim is a single autocommitted statement, never a
transaction held across the Kafka publish; a review whose publish fails releases its claim.
"""

import asyncpg

from planstream.domain.errors import Conflict, QuotaExceeded
from planstream.domain.events import RunReviewed

__all__ = ["ReviewClaims"]

_CLAIM = """
INSERT INTO run_reviews (run_id, step_id, attempt, event_id, action, reviewer, reason)
SELECT run_id, decided_step, decided_attempt, $2, $3, $4, $5
FROM pipeline_runs WHERE run_id = $1 AND status = 'blocked' AND decided_attempt >= 1
ON CONFLICT (run_id, step_id, attempt) DO NOTHING
RETURNING step_id, attempt
"""

# The run's reviews in the last hour, and when the oldest of them leaves the hour.
_RECENT = """
SELECT count(*) AS reviews,
       coalesce(extract(epoch FROM min(claimed_at) + interval '1 hour' - now()), 0) AS frees_in_s
FROM run_reviews WHERE run_id = $1 AND claimed_at > now() - interval '1 hour'
"""

# Why a claim was refused: the run's status now, and the claim on its block if one is held.
_REFUSAL = """
SELECT r.status, v.action, v.reviewer, v.claimed_at, v.event_id
FROM pipeline_runs r
LEFT JOIN run_reviews v
    ON v.run_id = r.run_id AND v.step_id = r.decided_step AND v.attempt = r.decided_attempt
WHERE r.run_id = $1
"""


class ReviewClaims:
    """Claims and releases the block a review decides, over one asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, review: RunReviewed, per_hour: int) -> tuple[int, int]:
        """Claim the block ``review`` decides; the step and attempt it is at. Raises Conflict
        naming why when the run is not blocked or another review holds its block, and
        QuotaExceeded when the run had ``per_hour`` reviews in the last hour."""
        recent = await self._pool.fetchrow(_RECENT, review.run_id)
        if recent["reviews"] >= per_hour:
            wait = max(1, int(float(recent["frees_in_s"])) + 1)
            raise QuotaExceeded(
                f"quota: {per_hour} reviews of one run an hour; try again in {wait} s", wait
            )
        row = await self._pool.fetchrow(
            _CLAIM,
            review.run_id,
            review.event_id,
            review.action,
            review.reviewer,
            review.reason,
        )
        if row is not None:
            return row["step_id"], row["attempt"]
        state = await self._pool.fetchrow(_REFUSAL, review.run_id)
        if state is None:
            raise Conflict(f"run {review.run_id} does not exist")
        if state["status"] != "blocked":
            raise Conflict(
                f"run {review.run_id} is {state['status']}, not blocked: nothing to review"
            )
        if state["event_id"] is None:  # blocked again meanwhile, at another step attempt
            raise Conflict(f"run {review.run_id} changed while it was reviewed: try again")
        raise Conflict(
            f"run {review.run_id} is already being reviewed: {state['action']} by"
            f" {state['reviewer']} at {state['claimed_at'].isoformat()} (event"
            f" {state['event_id']}); its decision is on its way"
        )

    async def release(self, review: RunReviewed) -> None:
        """Give the block back: ``review`` was not published, so another may decide it."""
        await self._pool.execute("DELETE FROM run_reviews WHERE event_id = $1", review.event_id)
