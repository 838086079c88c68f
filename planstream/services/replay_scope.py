"""What a replay's runtime puts around production's parts, so the same services write only
under the replay whose event is in hand (docs/replay.md).

- ``ReplayPublisher``: a replay re-decides one step attempt and follows nothing. Only the events
  inside an attempt (a step failure, the extraction, the comparison, the decision) go on, to
  their replay twins and stamped with the replay id; what a decision would be followed by (a
  render, a new attempt, the run's end or block) is dropped with a log line.
- ``ReplayStorage``: every key a service makes starts with ``replays/<replay_id>/`` (the port's
  ``prefix``), and a write anywhere else is refused.
- ``NewPathRoutes``: every step attempt of a replay is on the new path; nothing is recorded.
- ``ReplayLimiter``: a frozen replay calls no model, so it takes no turn at the provider's rate
  limit (which production shares); a live replay waits its turn like production.
"""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from planstream.domain.errors import PermanentError
from planstream.domain.events import Event
from planstream.domain.rate_buckets import Bucket
from planstream.domain.routing import FlagChange, FlagRefused, Flags, Route
from planstream.ports import ArtifactStore, Publisher, RateLimiter
from planstream.services.replay_model import CurrentReplay
from topics import (
    COMPARISON_COMPLETED,
    DECISION_MADE,
    INFO_EXTRACTED,
    REPLAY_FAMILY,
    REPLAY_PREFIX,
    STEP_FAILED,
    TopicSpec,
)

__all__ = [
    "FORWARDED",
    "NewPathRoutes",
    "ReplayLimiter",
    "ReplayPublisher",
    "ReplayStorage",
    "replay_prefix",
]

log = logging.getLogger(__name__)

FORWARDED: Final = frozenset(
    spec.name for spec in (STEP_FAILED, INFO_EXTRACTED, COMPARISON_COMPLETED, DECISION_MADE)
)
"""The step topics a replay publishes on (their twins): the events inside one attempt."""

_TWINS: Final = {
    name: twin
    for twin in REPLAY_FAMILY
    for name in (twin.name, f"planstream.{twin.name.removeprefix(REPLAY_PREFIX)}")
    if f"planstream.{twin.name.removeprefix(REPLAY_PREFIX)}" in FORWARDED
}
"""A forwarded topic's twin, by the topic's name or the twin's own."""


def replay_prefix(replay_id: str) -> str:
    """Where a replay's objects go: ``replays/<replay_id>/``."""
    return f"replays/{replay_id}/"


class ReplayPublisher:
    """Publishes the events inside a step attempt on their replay twins, stamped with the
    replay id; drops the rest (a replay follows nothing)."""

    def __init__(self, publisher: Publisher, replay: CurrentReplay) -> None:
        self._publisher = publisher
        self._replay = replay

    async def publish(self, spec: TopicSpec, event: Event) -> None:
        replay_id = self._replay.id()
        twin = _TWINS.get(spec.name)
        if twin is None:
            log.info(
                "replay %s: %s not published on %s (a replay follows nothing)",
                replay_id,
                type(event).__name__,
                spec.name,
                extra={"replay_id": replay_id, "run_id": event.run_id},
            )
            return
        if event.replay_id not in (None, replay_id):
            raise PermanentError(
                f"an event of replay {event.replay_id} was published for replay {replay_id}"
            )
        await self._publisher.publish(twin, event.model_copy(update={"replay_id": replay_id}))


class ReplayStorage:
    """The artifact store of a replay: its writers' keys start with ``replays/<replay_id>/``,
    a write elsewhere is refused; reads and signed URLs reach production's objects as before."""

    def __init__(self, storage: ArtifactStore, replay: CurrentReplay) -> None:
        self._storage = storage
        self._replay = replay

    @property
    def bucket(self) -> str:
        return self._storage.bucket

    @property
    def prefix(self) -> str:
        return replay_prefix(self._replay.id())

    async def read(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return await self._storage.read(bucket, key, max_bytes)

    async def write(self, key: str, data: bytes, content_type: str) -> None:
        prefix = self.prefix
        if not key.startswith(prefix) or ".." in key.split("/"):
            raise PermanentError(f"a replay writes only under {prefix}, not at {key:.120}")
        await self._storage.write(key, data, content_type)

    async def presign_get(self, bucket: str, key: str, ttl_s: int) -> str:
        return await self._storage.presign_get(bucket, key, ttl_s)

    def signed_until(self, url: str, bucket: str, key: str) -> datetime | None:
        return self._storage.signed_until(url, bucket, key)


class NewPathRoutes:
    """The routes of a replay: every step on the new path, nothing recorded, no flag changed."""

    async def flags(self) -> Flags:
        return Flags()

    async def set_flags(
        self, updates: Mapping[str, str], *, operator: str, reason: str
    ) -> list[FlagChange]:
        raise FlagRefused("a replay changes no routing flag")

    async def history(self, limit: int) -> list[FlagChange]:
        return []

    async def claim(self, run_id: str, step_id: int, attempt: int, route: Route) -> Route:
        return "new"


class ReplayLimiter:
    """The provider's rate limit for a live replay; no turn to take for a frozen one."""

    def __init__(self, limiter: RateLimiter, replay: CurrentReplay) -> None:
        self._limiter = limiter
        self._replay = replay

    async def _live(self) -> bool:
        _, terms = await self._replay.terms()
        return terms.mode == "live"

    async def reserve(self, bucket: Bucket, tokens: int, max_wait_s: float) -> float | None:
        if not await self._live():
            return 0.0
        return await self._limiter.reserve(bucket, tokens, max_wait_s)

    async def settle(self, bucket: Bucket, reserved: int, used: int) -> None:
        if await self._live():
            await self._limiter.settle(bucket, reserved, used)

    async def throttle(self, bucket: Bucket, retry_after_s: float) -> None:
        if await self._live():
            await self._limiter.throttle(bucket, retry_after_s)
