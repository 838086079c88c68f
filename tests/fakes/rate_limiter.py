"""The model rate limiter in memory, on the fake clock, as ``adapters/postgres/rate_limiter.py``
keeps it in PostgreSQL: the same arithmetic (``planstream.domain.rate_buckets``) on a table of
buckets that several instances, like several processes, may share."""

from planstream.domain import rate_buckets
from planstream.domain.rate_buckets import Bucket, Levels
from planstream.ports import Clock

__all__ = ["FakeRateLimiter"]


class FakeRateLimiter:
    """``RateLimiter`` over a dict of buckets; ``sibling()`` is another process on the same one."""

    def __init__(self, clock: Clock, table: dict[tuple[str, str], Levels] | None = None) -> None:
        self._clock = clock
        self.table: dict[tuple[str, str], Levels] = {} if table is None else table

    def sibling(self) -> "FakeRateLimiter":
        """Another limiter sharing this one's buckets, as another worker process would."""
        return type(self)(self._clock, self.table)

    def _levels(self, bucket: Bucket) -> Levels:
        key = (bucket.provider, bucket.model)
        if key not in self.table:
            self.table[key] = rate_buckets.full(bucket.limit, self._clock())
        return self.table[key]

    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        """Reserve one request and ``tokens`` tokens; the wait for the turn, or None."""
        levels, wait = rate_buckets.reserve(
            self._levels(bucket), bucket.limit, tokens, self._clock(), max_wait_s
        )
        self.table[bucket.provider, bucket.model] = levels
        return wait

    async def settle(self, bucket: Bucket, reserved: int, used: int) -> None:
        """Give back (or take) the difference between the reserved and the used tokens."""
        levels = rate_buckets.settle(
            self._levels(bucket), bucket.limit, reserved, used, self._clock()
        )
        self.table[bucket.provider, bucket.model] = levels

    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        """Pause the bucket for everyone until ``retry_after_s`` from now, and empty it."""
        levels = rate_buckets.throttle(
            self._levels(bucket), bucket.limit, retry_after_s, self._clock()
        )
        self.table[bucket.provider, bucket.model] = levels
