"""A provider's rate limits as token buckets: pure functions of the levels, the limit and the time.

Each (provider, model) has two buckets, requests and tokens per minute. A bucket refills
continuously at its per-minute rate, up to ``burst_s`` seconds' worth. A reservation takes its
share at once and may leave a bucket negative: the caller then waits until the debt is refilled.
So reservations are served in the order they were made, with one write each and no polling.

A 429 pauses the bucket until its ``Retry-After`` has passed, for every caller, and empties it:
after the pause it holds what refilled during the pause, not a burst.

No I/O and no clock here: ``now`` is passed in. The in-memory fake (on its fake clock) and the
scripted model server's quota run these functions; the PostgreSQL adapter writes the same
arithmetic as one SQL statement per operation, and the conformance suite holds it and the fake
to the same behaviour.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

__all__ = ["Bucket", "Levels", "RateLimit", "full", "refilled", "reserve", "settle", "throttle"]


@dataclass(frozen=True)
class RateLimit:
    """Requests and tokens per minute, and how many seconds of them a bucket may hold."""

    requests_per_minute: int
    tokens_per_minute: int
    burst_s: float

    @property
    def request_capacity(self) -> float:
        """At least one request, or a limit below one a burst would never let through."""
        return max(1.0, self.requests_per_minute * self.burst_s / 60)

    @property
    def token_capacity(self) -> float:
        return max(1.0, self.tokens_per_minute * self.burst_s / 60)

    @property
    def requests_per_s(self) -> float:
        return self.requests_per_minute / 60

    @property
    def tokens_per_s(self) -> float:
        return self.tokens_per_minute / 60


@dataclass(frozen=True)
class Bucket:
    """Whose limit: a provider (its base URL) and one of its models, with the limit to apply."""

    provider: str
    model: str
    limit: RateLimit


@dataclass(frozen=True)
class Levels:
    """What a bucket holds at ``at`` (negative: reserved ahead), and a 429's pause, if any."""

    requests: float
    tokens: float
    at: datetime
    paused_until: datetime | None = None


def full(limit: RateLimit, now: datetime) -> Levels:
    """A bucket nobody has used yet."""
    return Levels(limit.request_capacity, limit.token_capacity, now)


def refilled(levels: Levels, limit: RateLimit, now: datetime) -> Levels:
    """The levels at ``now``: refilled since ``at``, never above capacity (a clock that went
    back refills nothing)."""
    elapsed = max(0.0, (now - levels.at).total_seconds())
    return replace(
        levels,
        requests=min(limit.request_capacity, levels.requests + elapsed * limit.requests_per_s),
        tokens=min(limit.token_capacity, levels.tokens + elapsed * limit.tokens_per_s),
        at=max(levels.at, now),
    )


def reserve(
    levels: Levels, limit: RateLimit, tokens: int, now: datetime, max_wait_s: float
) -> tuple[Levels, float | None]:
    """Take one request and ``tokens`` tokens: the new levels and the seconds to wait before
    calling (0: at once), or the levels untouched and None when that wait exceeds ``max_wait_s``.
    """
    current = refilled(levels, limit, now)
    requests = current.requests - 1
    taken = current.tokens - max(0, tokens)
    pause = current.paused_until
    wait = max(
        -requests / limit.requests_per_s if requests < 0 else 0.0,
        -taken / limit.tokens_per_s if taken < 0 else 0.0,
        (pause - now).total_seconds() if pause is not None and pause > now else 0.0,
    )
    if wait > max_wait_s:
        return current, None
    return replace(current, requests=requests, tokens=taken), wait


def settle(levels: Levels, limit: RateLimit, reserved: int, used: int, now: datetime) -> Levels:
    """A call reserved ``reserved`` tokens and its answer says it used ``used``: give back the
    difference (or take the excess), never above capacity."""
    current = refilled(levels, limit, now)
    tokens = min(limit.token_capacity, current.tokens + max(0, reserved) - max(0, used))
    return replace(current, tokens=tokens)


def throttle(levels: Levels, limit: RateLimit, retry_after_s: float, now: datetime) -> Levels:
    """The provider answered 429: nobody calls before ``retry_after_s`` from now, and the
    bucket starts again from empty (what was reserved ahead stays owed)."""
    current = refilled(levels, limit, now)
    until = now + timedelta(seconds=max(0.0, retry_after_s))
    if current.paused_until is not None and current.paused_until > until:
        until = current.paused_until
    return replace(
        current,
        requests=min(0.0, current.requests),
        tokens=min(0.0, current.tokens),
        paused_until=until,
    )
