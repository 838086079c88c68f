"""Bounded retries with exponential backoff and full jitter, for transient failures only."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from planstream.domain.errors import RetryableError
from planstream.services import metrics
from planstream.settings import Settings

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "call_through_outages",
    "call_with_retries",
    "wait_out_outages",
]

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
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``call``; retry RetryableError up to the policy's attempts, re-raising the last.
    ``on_retry`` hears of each retry (to count it)."""
    for failures in range(1, policy.attempts + 1):
        try:
            return await call()
        except RetryableError as exc:
            if failures == policy.attempts:
                raise
            if on_retry is not None:
                on_retry(exc)
            delay = backoff_delay(policy, failures, draw())
            log.warning("%s failed (%s); retry %d in %.2fs", what, exc, failures, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable: the loop returns or raises")


async def call_through_outages(
    call: Callable[[], Awaitable[T]],
    outages: tuple[type[BaseException], ...],
    *,
    max_delay_s: float,
    what: str,
    draw: Callable[[], float] = random.random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``call``; while it fails with one of ``outages`` (a dependency is down, not the
    work), wait with backoff and try again, for as long as the outage lasts. ``on_retry``
    hears of each try again (to count it)."""
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=max_delay_s)
    failures = 0
    while True:
        try:
            return await call()
        except outages as exc:
            failures += 1
            if on_retry is not None:
                on_retry(exc)
            delay = backoff_delay(policy, failures, draw())
            log.warning("%s: outage (%s); try %d again in %.1fs", what, exc, failures, delay)
            await sleep(delay)


async def wait_out_outages(
    call: Callable[[], Awaitable[T]],
    outages: tuple[type[BaseException], ...],
    settings: Settings,
    service: str,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """``call_through_outages`` as a service waits PostgreSQL out: backoff up to
    ``db_outage_retry_max_s``, each try again counted as ``service``'s retry by the error's
    class."""
    return await call_through_outages(
        call,
        outages,
        max_delay_s=settings.db_outage_retry_max_s,
        what=f"{service}: {what}",
        sleep=sleep,
        on_retry=lambda exc: metrics.count_retry(service, metrics.reason_of(exc)),
    )
