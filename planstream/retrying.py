"""Bounded retries with exponential backoff and full jitter, for transient failures only."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from planstream.errors import RetryableError

__all__ = ["RetryPolicy", "backoff_delay", "call_with_retries"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    attempts: int = 3
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0


def backoff_delay(policy: RetryPolicy, failures: int, draw: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures; ``draw`` in [0, 1) is the jitter."""
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2 ** (failures - 1))
    return float(ceiling * draw)


async def call_with_retries(
    policy: RetryPolicy,
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    draw: Callable[[], float] = random.random,
) -> T:
    """Run ``call``; retry RetryableError up to the policy's attempts, re-raising the last."""
    for failures in range(1, policy.attempts + 1):
        try:
            return await call()
        except RetryableError as exc:
            if failures == policy.attempts:
                raise
            delay = backoff_delay(policy, failures, draw())
            log.warning("%s failed (%s); retry %d in %.2fs", what, exc, failures, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")
