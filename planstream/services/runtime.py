"""What every service runs with: records, storage, the model, a publisher and a clock.

Typed against ``planstream.ports`` only; ``planstream.adapters.composition`` fills one in with
the real adapters, a test with the fakes in ``tests/fakes``.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from planstream.ports import (
    ArtifactStore,
    Clock,
    Imaging,
    ModelCallLog,
    ModelClient,
    Publisher,
    RateLimiter,
    Repository,
)
from planstream.services.jobs import Jobs
from planstream.services.retrying import wait_out_outages
from planstream.services.routing import Routing
from planstream.services.signing import SignedUrls
from planstream.settings import Settings

__all__ = ["Runtime", "utc_now"]

T = TypeVar("T")


def utc_now() -> datetime:
    """The production clock."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Runtime:
    """One process's clients and pools, shared by its service.

    ``outage_errors`` are the exceptions that mean a dependency (PostgreSQL) is down rather than
    the work being bad: a write that fails with one is waited out, not counted as a failure.
    ``sleep`` is how the services wait (for the rate limiter, a backoff): ``asyncio.sleep``, or
    in a test one that moves the fake clock.
    """

    settings: Settings
    repo: Repository
    storage: ArtifactStore
    model: ModelClient
    model_calls: ModelCallLog
    publisher: Publisher
    imaging: Imaging
    signed_urls: SignedUrls
    jobs: Jobs
    limiter: RateLimiter
    routing: Routing
    outage_errors: tuple[type[BaseException], ...] = ()
    clock: Clock = utc_now
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def after_output(self, service: str, call: Callable[[], Awaitable[T]], what: str) -> T:
        """``call()`` for what follows a step's published output: a PostgreSQL outage is waited
        out here, in place, instead of doing the step again (which would publish the output a
        second time and make its model calls again)."""
        return await wait_out_outages(
            call, self.outage_errors, self.settings, service, what, self.sleep
        )
