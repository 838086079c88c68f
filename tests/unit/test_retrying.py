"""The retry policy: exponential backoff capped, jittered, and bounded in attempts."""

import pytest

from planstream.domain.errors import PermanentError, RetryableError
from planstream.services.retrying import (
    RetryPolicy,
    backoff_delay,
    call_through_outages,
    call_with_retries,
)

POLICY = RetryPolicy(attempts=3, base_delay_s=0.5, max_delay_s=3.0)


@pytest.mark.parametrize(
    ("failures", "draw", "delay"),
    [(1, 0.0, 0.0), (1, 0.999, 0.4995), (2, 0.5, 0.5), (3, 1.0, 2.0), (4, 1.0, 3.0), (9, 0.5, 1.5)],
)
def test_backoff_table(failures: int, draw: float, delay: float) -> None:
    assert backoff_delay(POLICY, failures, draw) == pytest.approx(delay)


async def test_retryable_errors_are_retried_up_to_the_budget() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RetryableError("busy")
        return "ok"

    assert await call_with_retries(POLICY, flaky, what="t", draw=lambda: 0.0) == "ok"
    assert calls == 3


async def test_the_last_retryable_error_is_raised_after_the_budget() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise RetryableError("down")

    with pytest.raises(RetryableError):
        await call_with_retries(POLICY, down, what="t", draw=lambda: 0.0)
    assert calls == POLICY.attempts


async def test_permanent_errors_are_not_retried() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("bad input")

    with pytest.raises(PermanentError):
        await call_with_retries(POLICY, broken, what="t", draw=lambda: 0.0)
    assert calls == 1


async def test_an_outage_is_waited_out_however_long_it_lasts() -> None:
    calls = 0
    waits: list[float] = []

    async def down_for_six_calls() -> str:
        nonlocal calls
        calls += 1
        if calls <= 6:
            raise ConnectionRefusedError("database down")
        return "stored"

    async def sleep(delay: float) -> None:
        waits.append(delay)

    result = await call_through_outages(
        down_for_six_calls,
        (ConnectionRefusedError,),
        max_delay_s=2.0,
        what="t",
        draw=lambda: 1.0,
        sleep=sleep,
    )
    assert (result, calls) == ("stored", 7)
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]  # more than a retry budget, capped backoff


async def test_an_error_that_is_no_outage_is_raised_at_once() -> None:
    async def broken() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await call_through_outages(broken, (ConnectionRefusedError,), max_delay_s=1.0, what="t")
