"""The model rate limiter's buckets in PostgreSQL, so every worker process shares one limit.

Each operation is one statement, so one round trip: it locks the model's row, brings it to the
database's clock, applies the arithmetic of ``planstream.domain.rate_buckets`` (written here in
SQL, one statement instead of four round trips of a transaction: see docs/model-protocol.md for
the measured difference) and writes it back. The conformance suite holds this and the in-memory
fake, which runs the domain's functions, to the same behaviour. A bucket's row is made full on
first use.
"""

from typing import Final

import asyncpg

from planstream.domain.rate_buckets import Bucket

__all__ = ["RateLimiter"]

# $1 provider, $2 model, $3/$4 request/token capacity, $5/$6 requests/tokens a second.
_NOW: Final = """
WITH cur AS (
    SELECT b.provider, b.model, c.now,
           least($3::float8, b.requests
                 + greatest(0, extract(epoch FROM c.now - b.refilled_at)) * $5::float8) AS requests,
           least($4::float8, b.tokens
                 + greatest(0, extract(epoch FROM c.now - b.refilled_at)) * $6::float8) AS tokens,
           greatest(b.refilled_at, c.now) AS at, b.paused_until
    FROM model_rate_buckets b CROSS JOIN (SELECT clock_timestamp() AS now) c
    WHERE b.provider = $1 AND b.model = $2
    FOR UPDATE OF b
)"""

# $7 tokens, $8 the longest wait allowed.
_RESERVE: Final = (
    _NOW
    + """, turn AS (
    SELECT cur.*, greatest(
        CASE WHEN requests < 1 THEN (1 - requests) / $5::float8 ELSE 0 END,
        CASE WHEN tokens < $7::float8 THEN ($7::float8 - tokens) / $6::float8 ELSE 0 END,
        CASE WHEN paused_until > now THEN extract(epoch FROM paused_until - now) ELSE 0 END
    )::float8 AS wait FROM cur
)
UPDATE model_rate_buckets b SET
    requests = CASE WHEN t.wait <= $8::float8 THEN t.requests - 1 ELSE t.requests END,
    tokens = CASE WHEN t.wait <= $8::float8 THEN t.tokens - $7::float8 ELSE t.tokens END,
    refilled_at = t.at
FROM turn t WHERE b.provider = t.provider AND b.model = t.model
RETURNING t.wait, t.wait <= $8::float8 AS taken
"""
)

# $7 reserved, $8 used.
_SETTLE: Final = (
    _NOW
    + """
UPDATE model_rate_buckets b SET
    requests = c.requests,
    tokens = least($4::float8, c.tokens + $7::float8 - $8::float8),
    refilled_at = c.at
FROM cur c WHERE b.provider = c.provider AND b.model = c.model
RETURNING 1
"""
)

# $7 the pause in seconds.
_THROTTLE: Final = (
    _NOW
    + """
UPDATE model_rate_buckets b SET
    requests = least(0, c.requests),
    tokens = least(0, c.tokens),
    refilled_at = c.at,
    paused_until = greatest(c.paused_until, c.now + make_interval(secs => $7::float8))
FROM cur c WHERE b.provider = c.provider AND b.model = c.model
RETURNING 1
"""
)

_CREATE: Final = """
INSERT INTO model_rate_buckets (provider, model, requests, tokens, refilled_at)
VALUES ($1, $2, $3, $4, clock_timestamp()) ON CONFLICT DO NOTHING
"""


class RateLimiter:
    """``RateLimiter`` over ``model_rate_buckets`` (asyncpg)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        """Reserve one request and ``tokens`` tokens; the wait for the turn, or None."""
        row = await self._apply(bucket, _RESERVE, float(max(0, tokens)), float(max_wait_s))
        return float(row["wait"]) if row["taken"] else None

    async def settle(self, bucket: Bucket, reserved: int, used: int) -> None:
        """Give back (or take) the difference between the reserved and the used tokens."""
        await self._apply(bucket, _SETTLE, float(max(0, reserved)), float(max(0, used)))

    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        """Pause the bucket for everyone until ``retry_after_s`` from now, and empty it."""
        await self._apply(bucket, _THROTTLE, float(max(0.0, retry_after_s)))

    async def _apply(self, bucket: Bucket, statement: str, *args: float) -> asyncpg.Record:
        limit = bucket.limit
        head = (
            bucket.provider,
            bucket.model,
            limit.request_capacity,
            limit.token_capacity,
            limit.requests_per_s,
            limit.tokens_per_s,
        )
        row = await self._pool.fetchrow(statement, *head, *args)
        if row is None:  # the bucket's first use: make it, full
            await self._pool.execute(_CREATE, *head[:4])
            row = await self._pool.fetchrow(statement, *head, *args)
        assert row is not None, "the bucket's row exists once made"
        return row
