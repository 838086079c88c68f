"""Broken rate limiters, one fault each, that the rate limiter's suite must catch."""

from planstream.domain import rate_buckets
from planstream.domain.rate_buckets import Bucket, Levels
from tests.conformance.fake_harnesses import FakeRateLimiterHarness
from tests.conformance.mutants import breaks
from tests.conformance.rate_limiter import RateLimiterContract
from tests.fakes import FakeRateLimiter

__all__: list[str] = []

L, LH = RateLimiterContract, FakeRateLimiterHarness


@breaks(
    L,
    LH,
    "test_every_process_shares_the_queue",
    "test_a_429_pauses_the_bucket_for_every_process",
    "test_tokens_used_beyond_the_reservation_are_taken",
)
class BucketsPerProcess(FakeRateLimiter):
    def sibling(self) -> FakeRateLimiter:
        return type(self)(self._clock)


@breaks(
    L,
    LH,
    "test_a_full_bucket_lets_a_burst_through_then_queues_in_order",
    "test_concurrent_reservations_get_distinct_turns",
    "test_tokens_queue_like_requests",
)
class NeverQueues(FakeRateLimiter):
    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        wait = await super().reserve(bucket, tokens, max_wait_s)
        return None if wait is None else 0.0


@breaks(L, LH, "test_a_turn_too_far_is_refused_and_takes_nothing")
class TakesARefusedTurn(FakeRateLimiter):
    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        wait = await super().reserve(bucket, tokens, 1e9)
        return None if wait is not None and wait > max_wait_s else wait


@breaks(
    L, LH, "test_unused_tokens_are_given_back", "test_tokens_used_beyond_the_reservation_are_taken"
)
class KeepsTheReservation(FakeRateLimiter):
    async def settle(self, bucket: Bucket, reserved: int, used: int) -> None:
        return None


@breaks(L, LH, "test_a_429_pauses_the_bucket_for_every_process")
class PausesNobody(FakeRateLimiter):
    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        levels = self._levels(bucket)
        self.table[bucket.provider, bucket.model] = rate_buckets.throttle(
            levels, bucket.limit, 0.0, self._clock()
        )


@breaks(L, LH, "test_a_429_empties_the_bucket")
class KeepsTheBurstAfterA429(FakeRateLimiter):
    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        levels = self._levels(bucket)
        paused = rate_buckets.throttle(levels, bucket.limit, retry_after_s, self._clock())
        self.table[bucket.provider, bucket.model] = Levels(
            levels.requests, levels.tokens, paused.at, paused.paused_until
        )


@breaks(L, LH, "test_buckets_are_per_provider_and_model")
class OneBucketPerProvider(FakeRateLimiter):
    def _levels(self, bucket: Bucket) -> Levels:
        return super()._levels(Bucket(bucket.provider, "any", bucket.limit))

    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        await super().throttle(Bucket(bucket.provider, "any", bucket.limit), retry_after_s)


@breaks(L, LH, "test_time_refills_the_bucket")
class NeverRefills(FakeRateLimiter):
    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        levels = self._levels(bucket)
        frozen = Levels(levels.requests, levels.tokens, self._clock(), levels.paused_until)
        self.table[bucket.provider, bucket.model] = frozen
        return await super().reserve(bucket, tokens, max_wait_s)
