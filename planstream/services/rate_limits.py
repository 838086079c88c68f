"""Queueing for the provider's rate limit before a model call, and pacing a call's transport tries.

Waiting for the limiter is queueing, not failure: it spends none of the step's budget, it happens
inside the step's ``async with work`` (so the job's lease is renewed meanwhile), and it is bounded
by ``model_limiter_max_wait_s`` over all the calls of one ``BudgetedCaller.call``.
"""

import functools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from planstream.domain.rate_buckets import Bucket, RateLimit
from planstream.ports import ModelUnavailable, RateLimiter
from planstream.services.metrics import count_throttled, observe_limiter_wait
from planstream.services.retrying import call_through_outages
from planstream.settings import Settings

__all__ = ["Allowance", "ModelLimiter", "Pacing", "Sleep", "prompt_tokens"]

log = logging.getLogger(__name__)

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]
"""``asyncio.sleep`` in production; a test may pass one that moves a fake clock instead."""

_CHARS_PER_TOKEN: Final = 4
_REQUEST_OVERHEAD_CHARS: Final = 400
"""The request's own JSON around the messages and the schema (model, response_format, ...)."""
_BACKOFF_BASE_S: Final = 0.5
_GAP_GROWTH: Final = 1.25
"""Each retry after a failure without Retry-After waits at least this much longer than the one
before, measured from failure to retry, limiter waits included: backoff a client can see."""


def prompt_tokens(
    messages: Sequence[Mapping[str, Any]] | str, schema: Mapping[str, Any], image_tokens: int
) -> int:
    """What the request's prompt counts toward a tokens-per-minute limit, estimated the way
    providers do before they read it: its characters over four, plus each image's tokens."""
    text = messages if isinstance(messages, str) else json.dumps(messages)
    chars = len(text) + len(json.dumps(schema)) + _REQUEST_OVERHEAD_CHARS
    images = 0 if isinstance(messages, str) else sum(_images(m.get("content")) for m in messages)
    return -(-chars // _CHARS_PER_TOKEN) + images * image_tokens


def _images(content: object) -> int:
    """How many ``image_url`` parts a message's content holds."""
    if not isinstance(content, list):
        return 0
    return sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image_url")


@dataclass
class Allowance:
    """How long the calls of one ``BudgetedCaller.call`` may still wait for the limiter."""

    limit_s: float
    waited_s: float = 0.0

    @property
    def left_s(self) -> float:
        return max(0.0, self.limit_s - self.waited_s)


class ModelLimiter:
    """The rate limiter as the services use it: the bucket of a model, the estimate of a call,
    the wait for its turn, the correction after the answer, the pause after a 429.

    ``outages`` (``Runtime.outage_errors``) mean the limiter's database is down: its operations
    wait the outage out, as the model-call log's writes do, rather than fail the step.
    """

    def __init__(
        self,
        settings: Settings,
        limiter: RateLimiter,
        sleep: Sleep,
        outages: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._settings = settings
        self._limiter = limiter
        self._sleep = sleep
        self._outages = outages
        self._provider = settings.model_base_url.rstrip("/")

    async def _through(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        return await call_through_outages(
            call,
            self._outages,
            max_delay_s=self._settings.db_outage_retry_max_s,
            what=f"the rate limiter: {what}",
        )

    def bucket(self, model: str) -> Bucket:
        """The provider's bucket for ``model`` with its configured limit."""
        s = self._settings
        rpm, tpm = s.model_rate_limits.get(model, s.model_rate_limit_default)
        return Bucket(self._provider, model, RateLimit(rpm, tpm, s.model_limiter_burst_s))

    def estimate(self, prompt: int) -> int:
        """Tokens to reserve: the prompt's estimate and every token the answer may use."""
        return max(0, prompt) + self._settings.model_max_output_tokens

    async def wait_turn(self, model: str, tokens: int, allowance: Allowance) -> float | None:
        """Reserve the call's request and tokens and wait for its turn; the seconds waited, or
        None once the allowance is spent without a turn (the time spent asking is counted)."""
        bucket = self.bucket(model)
        waited = 0.0
        while True:
            wait = await self._through(
                functools.partial(self._limiter.reserve, bucket, tokens, allowance.left_s),
                "reserving a turn",
            )
            if wait is not None:
                if wait > 0:
                    await self._sleep(wait)
                waited += wait
                allowance.waited_s += wait
                observe_limiter_wait(model, waited)
                return waited
            if allowance.left_s <= 0:
                observe_limiter_wait(model, waited)
                return None
            pause = min(self._settings.model_limiter_recheck_s, allowance.left_s)
            await self._sleep(pause)
            waited += pause
            allowance.waited_s += pause

    async def settle(self, model: str, reserved: int, used: int) -> None:
        """Correct the reservation with the usage the answer reported."""
        bucket = self.bucket(model)
        await self._through(
            lambda: self._limiter.settle(bucket, reserved, used), "correcting a reservation"
        )

    async def throttle(self, model: str, retry_after_s: float) -> None:
        """A 429: pause the model's bucket for every process (``Retry-After``, capped)."""
        count_throttled(model)
        pause = min(retry_after_s, self._settings.model_retry_after_cap_s)
        bucket = self.bucket(model)
        await self._through(lambda: self._limiter.throttle(bucket, pause), "pausing after a 429")


class Pacing:
    """The gaps between one call's transport tries: a failure without ``Retry-After`` is retried
    after exponential backoff with jitter, each gap longer than the last; one with it, after it.
    """

    def __init__(
        self,
        cap_s: float,
        sleep: Sleep,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._cap_s = cap_s
        self._sleep = sleep
        self._clock = clock
        self._draw = draw
        self._failures = 0
        self._failed_at: float | None = None
        self._needed_s = 0.0
        self._last_gap_s = 0.0
        self._backing_off = False

    def failed(self, error: ModelUnavailable) -> float:
        """Note a transport failure; returns the gap the next try keeps from it (for a 429, the
        limiter's pause for everyone)."""
        self._failures += 1
        self._failed_at = self._clock()
        after = error.retry_after_s
        self._backing_off = after is None
        if after is not None:
            self._needed_s = min(after, self._cap_s)
        else:
            ceiling = _BACKOFF_BASE_S * 2 ** (self._failures - 1)
            jittered = ceiling * (0.5 + self._draw() / 2)
            self._needed_s = max(min(jittered, self._cap_s), self._last_gap_s * _GAP_GROWTH)
        return self._needed_s

    async def keep_gap(self) -> None:
        """Before the next try: wait out what is left of the gap since the last failure."""
        if self._failed_at is None:
            return
        left = self._needed_s - (self._clock() - self._failed_at)
        if left > 0:
            await self._sleep(left)
        if self._backing_off:
            self._last_gap_s = self._clock() - self._failed_at
        log.debug("transport retry %d after %.2f s", self._failures, self._needed_s)
