"""A person's decision on a blocked run, as the API and the console both take it: one code path
for the checks, the review claim (one review per block, the per-run quota) and the publish."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from planstream.adapters import tracing
from planstream.adapters.http.resources import POOL, PUBLISHER, REPO, SETTINGS
from planstream.adapters.postgres.reviews import ReviewClaims
from planstream.domain.errors import Conflict, RecordMissing
from planstream.domain.events import RunReviewed
from planstream.domain.ids import new_id
from topics import RUN_REVIEWED

__all__ = ["ReviewAction", "Submitted", "submit_review"]

ReviewAction = Literal["approve", "retry", "reject"]


@dataclass(frozen=True)
class Submitted:
    """A review the Supervisor will carry out, and the blocked step attempt it decides."""

    reviewed: RunReviewed
    step_id: int
    attempt: int


async def submit_review(
    resources: Mapping[Any, Any], run_id: str, action: ReviewAction, reason: str, reviewer: str
) -> Submitted:
    """Claim the run's block for this review and publish its ``RunReviewed`` (the Supervisor
    carries it out). ``resources`` is the application's (``request.config_dict``); ``reviewer``
    is the signed-in operator's subject. RecordMissing when the run does not exist, Conflict
    (409) unless it is blocked and no review holds its block, QuotaExceeded (429)."""
    run = await resources[REPO].get_run(run_id)
    if run is None:
        raise RecordMissing(f"run {run_id} does not exist")
    if run.status != "blocked":
        raise Conflict(f"run {run_id} is {run.status}, not blocked: nothing to review")
    reviewed = RunReviewed(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        action=action,
        reason=reason,
        reviewer=reviewer,
    )
    claims = ReviewClaims(resources[POOL])
    step_id, attempt = await claims.claim(reviewed, resources[SETTINGS].quota_reviews_per_run_hour)
    publisher = tracing.RunTracePublisher(
        resources[PUBLISHER], resources[REPO].run_traceparent, "ingress"
    )
    try:
        await publisher.publish(RUN_REVIEWED, reviewed)
    except BaseException:
        await claims.release(reviewed)  # not published: another review may decide the block
        raise
    return Submitted(reviewed, step_id, attempt)
