"""What a replay app does around each event, beside production's handling (docs/replay.md).

Each event is handled inside its replay (``current_replay``: the replay pool works in that
replay's schema, and the tasks the event starts keep it). An event of a replay that ended
(cancelled, failed, purged) is acknowledged and dropped, a cancelled replay's attempt marked
cancelled; an attempt whose event was refused (dead-lettered) is marked failed, with why.
"""

import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

from planstream.adapters import logs
from planstream.adapters.postgres.replay_pool import replay_scope
from planstream.domain.events import Event, StepEvent
from planstream.ports import ReplayLedger
from planstream.services import metrics

__all__ = ["ReplayGate"]

log = logging.getLogger(__name__)

ENDED: Final = frozenset({"cancelled", "failed", "purged"})
"""A replay's events are dropped, not handled, once it ended this way (a purged one has no
schema left to mark its attempts in)."""

Retried = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class ReplayGate:
    """A replay app's scope, drop and marks for the events of ``service``."""

    def __init__(
        self,
        service: str,
        namespace: str,
        ledger: Callable[[], Awaitable[ReplayLedger]],
        through_outages: Retried,
    ) -> None:
        self._service = service
        self._namespace = namespace
        self._ledger = ledger
        self._through_outages = through_outages  # the app's: PostgreSQL outages waited out

    @contextmanager
    def inside(self, value: Event) -> Iterator[None]:
        """Handle ``value`` inside its replay (a replay codec let no event without one in)."""
        assert value.replay_id is not None
        with replay_scope(value.replay_id), logs.bound(replay_id=value.replay_id):
            yield

    async def ended(self, value: Event, topic: str) -> bool:
        """Whether the event's replay ended: then the event is dropped (and counted as
        consumed, to be acknowledged), a cancelled replay's attempt marked cancelled."""
        replay_id = value.replay_id
        assert replay_id is not None
        ledger = await self._ledger()
        status = await self._through_outages(lambda: ledger.status(replay_id))
        if status not in ENDED:
            return False
        log.info(
            "%s dropped %s of replay %s: the replay is %s",
            self._service,
            type(value).__name__,
            replay_id,
            status,
        )
        if status == "cancelled":
            await self.mark(value, "cancelled")
        metrics.count_consumed(self._service, topic.removeprefix(self._namespace))
        return True

    async def mark(self, value: Event, status: str, error: BaseException | None = None) -> None:
        """Record how the event's step attempt ended in its replay (a failure to record it is
        logged: the event itself is dealt with already)."""
        replay_id = value.replay_id
        if replay_id is None or not isinstance(value, StepEvent):
            return
        reason = None if error is None else f"{self._service}: {type(error).__name__}: {error}"
        try:
            ledger = await self._ledger()
            with replay_scope(replay_id):
                await self._through_outages(
                    lambda: ledger.mark_attempt(
                        replay_id, value.run_id, value.step_id, value.attempt, status, reason
                    )
                )
        except Exception as exc:
            log.warning(
                "%s could not mark an attempt of replay %s %s (%s)",
                self._service,
                replay_id,
                status,
                exc,
            )
