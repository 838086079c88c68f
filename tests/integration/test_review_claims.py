"""Review claims against real PostgreSQL: of concurrent reviews of one block exactly one claims it,
the others are refused with why; a released claim frees the block; a run not blocked refuses
every review; a later block of the same run is a new one to review."""

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from planstream.adapters.postgres.decision_log import DecisionLog
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.reviews import ReviewClaims
from planstream.domain.errors import Conflict, QuotaExceeded
from planstream.domain.events import RunReviewed
from planstream.domain.ids import new_id
from planstream.settings import Settings
from tests.integration.test_decision_log import _decision, _run


def _review(run_id: str, action: str = "approve") -> RunReviewed:
    return RunReviewed(
        event_id=new_id("evt"),
        run_id=run_id,
        occurred_at=datetime.now(UTC),
        action=action,  # type: ignore[arg-type]
        reason="checked by hand",
        reviewer="test-operator",
    )


async def _blocked(repo: Repository, pool: asyncpg.Pool, settings: Settings) -> str:
    run_id = await _run(repo, settings)
    await DecisionLog(pool).write([_decision(run_id, 0, 1, "block")])
    return run_id


async def test_of_concurrent_reviews_exactly_one_claims_the_block(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    run_id = await _blocked(repo, pool, settings)
    claims = ReviewClaims(pool)
    reviews = [_review(run_id, action) for action in ("approve", "retry", "reject", "approve")]
    results = await asyncio.gather(*(claims.claim(r, 10) for r in reviews), return_exceptions=True)
    won = [r for r, result in zip(reviews, results, strict=True) if result == (0, 1)]
    refused = [result for result in results if isinstance(result, Conflict)]
    assert len(won) == 1 and len(refused) == 3, results
    for conflict in refused:
        assert "already being reviewed" in str(conflict)
        assert won[0].event_id in str(conflict) and won[0].action in str(conflict)
    held = await pool.fetch("SELECT event_id FROM run_reviews WHERE run_id = $1", run_id)
    assert [row["event_id"] for row in held] == [won[0].event_id]


async def test_a_released_claim_frees_the_block(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    run_id = await _blocked(repo, pool, settings)
    claims = ReviewClaims(pool)
    first, second = _review(run_id), _review(run_id, "retry")
    assert await claims.claim(first, 10) == (0, 1)
    with pytest.raises(Conflict, match="already being reviewed"):
        await claims.claim(second, 10)
    await claims.release(first)  # its publish failed
    assert await claims.claim(second, 10) == (0, 1)


async def test_a_run_not_blocked_refuses_every_review(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    claims = ReviewClaims(pool)
    pending = await _run(repo, settings)
    with pytest.raises(Conflict, match=f"run {pending} is pending, not blocked"):
        await claims.claim(_review(pending), 10)
    with pytest.raises(Conflict, match="does not exist"):
        await claims.claim(_review(new_id("run")), 10)
    rejected = await _blocked(repo, pool, settings)
    assert await claims.claim(_review(rejected, "reject"), 10) == (0, 1)
    await DecisionLog(pool).write(
        [_decision(rejected, 0, 1, "block", decided_by="reviewer", block_reason=None)]
    )
    with pytest.raises(Conflict, match="is rejected, not blocked"):
        await claims.claim(_review(rejected), 10)


async def test_a_later_block_of_the_same_run_is_a_new_one_to_review(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    run_id = await _blocked(repo, pool, settings)
    claims = ReviewClaims(pool)
    assert await claims.claim(_review(run_id, "retry"), 10) == (0, 1)
    log = DecisionLog(pool)
    await log.write([_decision(run_id, 0, 1, "retry", decided_by="reviewer")])
    await log.write([_decision(run_id, 0, 4, "block")])  # the fresh budget ran out too
    assert await claims.claim(_review(run_id), 10) == (0, 4)


async def test_reviews_of_one_run_over_the_hourly_quota_are_refused(
    repo: Repository, pool: asyncpg.Pool, settings: Settings
) -> None:
    run_id = await _blocked(repo, pool, settings)
    claims = ReviewClaims(pool)
    assert await claims.claim(_review(run_id, "retry"), 2) == (0, 1)
    log = DecisionLog(pool)
    await log.write([_decision(run_id, 0, 1, "retry", decided_by="reviewer")])
    await log.write([_decision(run_id, 0, 4, "block")])
    assert await claims.claim(_review(run_id, "retry"), 2) == (0, 4)
    await log.write([_decision(run_id, 0, 4, "retry", decided_by="reviewer")])
    await log.write([_decision(run_id, 0, 7, "block")])
    with pytest.raises(QuotaExceeded, match="2 reviews of one run an hour") as refused:
        await claims.claim(_review(run_id), 2)
    assert 3_500 <= refused.value.retry_after_s <= 3_601
