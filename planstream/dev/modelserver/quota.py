"""The scripted server's rate limits: requests and tokens per minute per model, like a provider's.

Off unless ``model_server_rpm`` or ``model_server_tpm`` is set. A request is charged on arrival
what OpenAI charges: its body's characters over four (for an image edit, its prompt's, and the
image) plus the output it may use (``max_completion_tokens``), then corrected by the usage its
answer reports. Beyond the limit it is answered 429 with ``Retry-After`` (and
``retry-after-ms``) saying when the capacity it asks for is back, and its scenario does not
advance. The buckets are ``planstream.domain.rate_buckets``'s, holding ``model_server_burst_s``
seconds of the limit; the limiter under test shares that arithmetic, not this state.
"""

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from planstream.dev.modelserver.errors import ApiError
from planstream.domain import rate_buckets
from planstream.domain.rate_buckets import Levels, RateLimit

__all__ = ["IMAGE_INPUT_TOKENS", "Quota"]

IMAGE_INPUT_TOKENS: Final = 1105
"""What an image edit's input image counts (as ``completions.image_edit`` reports it)."""
_UNLIMITED: Final = 10**12


@dataclass
class Quota:
    """The limits and what each model's buckets hold; ``refused`` counts the 429s answered."""

    rpm: int
    tpm: int
    burst_s: float
    refused: int = 0
    _buckets: dict[str, Levels] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.rpm > 0 or self.tpm > 0

    @property
    def _limit(self) -> RateLimit:
        return RateLimit(self.rpm or _UNLIMITED, self.tpm or _UNLIMITED, self.burst_s)

    def admit(self, model: str, tokens: int) -> None:
        """Charge one request and ``tokens`` tokens to ``model``, or raise the 429 that says
        when they are there."""
        if not self.enabled:
            return
        now = datetime.now(UTC)
        limit = self._limit
        levels = rate_buckets.refilled(
            self._buckets.get(model) or rate_buckets.full(limit, now), limit, now
        )
        taken, wait = rate_buckets.reserve(levels, limit, tokens, now, math.inf)
        if wait is None or wait <= 0:
            self._buckets[model] = taken
            return
        self._buckets[model] = levels
        self.refused += 1
        kind = "requests" if levels.requests < 1 else "tokens"
        raise ApiError(
            429,
            f"Rate limit reached for {model} in {kind} per minute. "
            f"Please try again in {wait:.3f}s.",
            kind=kind,
            code="rate_limit_exceeded",
            headers={
                "Retry-After": str(math.ceil(wait)),
                "retry-after-ms": str(round(wait * 1000)),
            },
        )

    def settle(self, model: str, charged: int, used: int) -> None:
        """The answer says it used ``used`` of the ``charged`` tokens: give back the rest."""
        if not self.enabled:
            return
        levels = self._buckets.get(model)
        if levels is not None:
            now = datetime.now(UTC)
            self._buckets[model] = rate_buckets.settle(levels, self._limit, charged, used, now)
