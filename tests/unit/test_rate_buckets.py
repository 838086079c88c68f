"""The rate limiter's arithmetic: refill, reservation in order, correction, a 429's pause."""

from datetime import UTC, datetime, timedelta

import pytest

from planstream.domain.rate_buckets import (
    Levels,
    RateLimit,
    full,
    refilled,
    reserve,
    settle,
    throttle,
)

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
PER_S = RateLimit(requests_per_minute=60, tokens_per_minute=6_000, burst_s=2.0)
"""One request and 100 tokens a second; a bucket holds 2 requests and 200 tokens."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("rpm", "tpm", "burst_s", "requests", "tokens"),
    [
        (60, 6_000, 2.0, 2.0, 200.0),
        (5_000, 450_000, 60.0, 5_000.0, 450_000.0),
        (20, 250_000, 1.0, 1.0, 250_000 / 60),  # below one request a burst: still one
        (1, 1, 0.5, 1.0, 1.0),
    ],
)
def test_capacity_is_burst_seconds_of_the_limit(
    rpm: int, tpm: int, burst_s: float, requests: float, tokens: float
) -> None:
    levels = full(RateLimit(rpm, tpm, burst_s), T0)
    assert (levels.requests, levels.tokens) == (pytest.approx(requests), pytest.approx(tokens))


@pytest.mark.parametrize(
    ("start", "elapsed", "expected"),
    [
        ((0.0, 0.0), 1.0, (1.0, 100.0)),
        ((0.0, 0.0), 10.0, (2.0, 200.0)),  # never above capacity
        ((-3.0, -300.0), 2.0, (-1.0, -100.0)),  # debt is refilled like anything else
        ((1.0, 100.0), -5.0, (1.0, 100.0)),  # a clock that went back refills nothing
    ],
)
def test_refill(start: tuple[float, float], elapsed: float, expected: tuple[float, float]) -> None:
    levels = refilled(Levels(*start, at=T0), PER_S, at(elapsed))
    assert (levels.requests, levels.tokens) == (pytest.approx(expected[0]), expected[1])
    assert levels.at == max(T0, at(elapsed))


@pytest.mark.parametrize(
    ("tokens", "waits"),
    [
        (0, [0.0, 0.0, 1.0, 2.0, 3.0]),  # two at once, then one a second
        (100, [0.0, 0.0, 1.0, 2.0, 3.0]),  # tokens keep pace with requests
        (200, [0.0, 2.0, 4.0, 6.0, 8.0]),  # tokens are the tighter limit
        (500, [3.0, 8.0, 13.0, 18.0, 23.0]),  # one call asks more than a bucket holds
    ],
)
def test_reservations_queue_in_order(tokens: int, waits: list[float]) -> None:
    levels = full(PER_S, T0)
    got = []
    for _ in waits:
        levels, wait = reserve(levels, PER_S, tokens, T0, max_wait_s=60.0)
        got.append(wait)
    assert got == [pytest.approx(w) for w in waits]


def test_a_turn_beyond_the_wait_allowed_takes_nothing() -> None:
    levels = Levels(-1.0, 200.0, T0)
    kept, wait = reserve(levels, PER_S, 10, T0, max_wait_s=1.5)
    assert wait is None and (kept.requests, kept.tokens) == (-1.0, 200.0)
    _, wait = reserve(kept, PER_S, 10, T0, max_wait_s=2.0)
    assert wait == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("reserved", "used", "tokens"),
    [
        (200, 50, 150.0),  # unused tokens come back
        (200, 200, 0.0),
        (100, 400, -200.0),  # more than reserved: owed
        (500, 0, 200.0),  # never above capacity
    ],
)
def test_settle(reserved: int, used: int, tokens: float) -> None:
    levels, _ = reserve(Levels(2.0, 200.0, T0), PER_S, reserved, T0, 60.0)
    levels = settle(levels, PER_S, reserved, used, T0)
    assert levels.tokens == pytest.approx(tokens)


def test_a_429_pauses_and_empties_the_bucket() -> None:
    levels = throttle(full(PER_S, T0), PER_S, 5.0, T0)
    assert (levels.requests, levels.tokens, levels.paused_until) == (0.0, 0.0, at(5.0))
    _, wait = reserve(levels, PER_S, 0, at(1.0), 60.0)
    assert wait == pytest.approx(4.0)  # the pause, not the refill, decides
    _, wait = reserve(levels, PER_S, 0, at(1.0), 3.0)
    assert wait is None


def test_a_shorter_429_never_shortens_a_pause() -> None:
    levels = throttle(full(PER_S, T0), PER_S, 10.0, T0)
    levels = throttle(levels, PER_S, 1.0, at(2.0))
    assert levels.paused_until == at(10.0)


def test_after_the_pause_the_bucket_holds_only_the_pause_s_refill() -> None:
    levels = throttle(full(PER_S, T0), PER_S, 1.0, T0)  # full: 2 requests at once
    waits = []
    for _ in range(3):
        levels, wait = reserve(levels, PER_S, 0, at(1.0), 60.0)
        waits.append(wait)
    assert waits == [pytest.approx(0.0), pytest.approx(1.0), pytest.approx(2.0)]
