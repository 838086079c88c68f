"""What the model budget relies on from the rate limiter: one queue per provider and model, shared
by every process, served in order; a refused turn takes nothing; tokens count like requests and
are corrected after the answer; a 429 pauses the bucket for everyone; time refills it.

Limits are chosen so that a real clock's milliseconds between two calls cannot change an answer
(waits are compared to within ``SLACK_S``).
"""

import asyncio
import itertools
from typing import Protocol

import pytest

from planstream.domain.ids import new_id
from planstream.domain.rate_buckets import Bucket, RateLimit
from planstream.ports import RateLimiter

__all__ = ["SLACK_S", "RateLimiterContract", "RateLimiterHarness", "new_bucket"]

SLACK_S = 0.3
"""How far a wait may be from the arithmetic's (the real clock moves between two calls)."""
LOTS = 10_000_000
"""A limit no test reaches."""


class RateLimiterHarness(Protocol):
    @property
    def limiter(self) -> RateLimiter: ...

    def other(self) -> RateLimiter:
        """Another process's limiter (its own connections) on the same buckets."""

    async def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass on the clock the limiter reads."""


def new_bucket(
    rpm: int = LOTS, tpm: int = LOTS, burst_s: float = 60.0, *, provider: str | None = None
) -> Bucket:
    """A bucket of this test only (the real table holds other tests' too)."""
    where = provider or f"http://conformance-{new_id('evt')[4:16]}.test/v1"
    return Bucket(where, "gpt-conformance", RateLimit(rpm, tpm, burst_s))


def _near(wait: float | None, expected: float) -> bool:
    return wait is not None and abs(wait - expected) <= SLACK_S


class RateLimiterContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_a_full_bucket_lets_a_burst_through_then_queues_in_order(
        self, harness: RateLimiterHarness
    ) -> None:
        bucket = new_bucket(rpm=60, burst_s=3.0)  # one a second, three at once
        waits = [await harness.limiter.reserve(bucket, 1, 60.0) for _ in range(5)]
        assert waits[:3] == [pytest.approx(0.0, abs=SLACK_S)] * 3, waits
        assert _near(waits[3], 1.0) and _near(waits[4], 2.0), waits

    async def test_every_process_shares_the_queue(self, harness: RateLimiterHarness) -> None:
        bucket = new_bucket(rpm=60, burst_s=1.0)
        first = await harness.limiter.reserve(bucket, 1, 60.0)
        second = await harness.other().reserve(bucket, 1, 60.0)
        third = await harness.limiter.reserve(bucket, 1, 60.0)
        assert _near(first, 0.0) and _near(second, 1.0) and _near(third, 2.0)

    async def test_concurrent_reservations_get_distinct_turns(
        self, harness: RateLimiterHarness
    ) -> None:
        bucket = new_bucket(rpm=600, burst_s=0.1)  # one every 0.1 s, one at once
        limiters = [harness.limiter, harness.other()]
        waits = await asyncio.gather(*(limiters[i % 2].reserve(bucket, 1, 60.0) for i in range(12)))
        turns = sorted(w for w in waits if w is not None)
        assert len(turns) == 12
        gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
        assert min(gaps) >= 0.1 - 0.02, turns  # nobody was given a turn already taken

    async def test_a_turn_too_far_is_refused_and_takes_nothing(
        self, harness: RateLimiterHarness
    ) -> None:
        bucket = new_bucket(rpm=60, burst_s=1.0)
        assert _near(await harness.limiter.reserve(bucket, 1, 60.0), 0.0)
        assert await harness.limiter.reserve(bucket, 1, 0.5) is None
        assert _near(await harness.limiter.reserve(bucket, 1, 60.0), 1.0)

    async def test_tokens_queue_like_requests(self, harness: RateLimiterHarness) -> None:
        bucket = new_bucket(tpm=600)  # 10 tokens a second, 600 at once
        assert _near(await harness.limiter.reserve(bucket, 600, 60.0), 0.0)
        assert _near(await harness.limiter.reserve(bucket, 100, 60.0), 10.0)

    async def test_unused_tokens_are_given_back(self, harness: RateLimiterHarness) -> None:
        bucket = new_bucket(tpm=600)
        assert _near(await harness.limiter.reserve(bucket, 600, 60.0), 0.0)
        await harness.limiter.settle(bucket, 600, 100)  # 500 back
        assert _near(await harness.limiter.reserve(bucket, 400, 60.0), 0.0)
        assert _near(await harness.limiter.reserve(bucket, 200, 60.0), 10.0)

    async def test_tokens_used_beyond_the_reservation_are_taken(
        self, harness: RateLimiterHarness
    ) -> None:
        bucket = new_bucket(tpm=600)
        assert _near(await harness.limiter.reserve(bucket, 100, 60.0), 0.0)
        await harness.other().settle(bucket, 100, 700)  # 600 more: 100 owed
        assert _near(await harness.limiter.reserve(bucket, 0, 60.0), 10.0)

    async def test_a_429_pauses_the_bucket_for_every_process(
        self, harness: RateLimiterHarness
    ) -> None:
        bucket = new_bucket(rpm=60, burst_s=10.0)
        await harness.limiter.throttle(bucket, 5.0)
        assert _near(await harness.other().reserve(bucket, 1, 60.0), 5.0)
        assert await harness.other().reserve(bucket, 1, 4.0) is None

    async def test_a_429_empties_the_bucket(self, harness: RateLimiterHarness) -> None:
        bucket = new_bucket(rpm=60, burst_s=10.0)  # ten at once, one a second
        await harness.limiter.throttle(bucket, 0.0)
        assert _near(await harness.limiter.reserve(bucket, 1, 60.0), 1.0)

    async def test_buckets_are_per_provider_and_model(self, harness: RateLimiterHarness) -> None:
        bucket = new_bucket(rpm=60, burst_s=1.0)
        other_model = Bucket(bucket.provider, "gpt-other", bucket.limit)
        other_provider = new_bucket(rpm=60, burst_s=1.0)
        await harness.limiter.throttle(bucket, 30.0)
        assert _near(await harness.limiter.reserve(other_model, 1, 60.0), 0.0)
        assert _near(await harness.limiter.reserve(other_provider, 1, 60.0), 0.0)

    async def test_time_refills_the_bucket(self, harness: RateLimiterHarness) -> None:
        bucket = new_bucket(rpm=60, burst_s=1.0)
        assert _near(await harness.limiter.reserve(bucket, 1, 60.0), 0.0)
        await harness.elapse(1.5)
        assert _near(await harness.limiter.reserve(bucket, 1, 60.0), 0.0)
        assert _near(await harness.limiter.reserve(bucket, 1, 60.0), 1.0)
