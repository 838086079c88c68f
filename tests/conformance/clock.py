"""What the services rely on from the clock: an aware UTC moment that never goes back."""

from datetime import timedelta
from typing import Protocol

from planstream.ports import Clock

__all__ = ["ClockContract", "ClockHarness"]


class ClockHarness(Protocol):
    @property
    def clock(self) -> Clock: ...

    async def elapse(self, seconds: float) -> None:
        """Let time pass for this clock."""


class ClockContract:
    """The suite; subclass it with a ``harness`` fixture."""

    async def test_now_is_aware_utc(self, harness: ClockHarness) -> None:
        now = harness.clock()
        assert now.utcoffset() == timedelta(0)

    async def test_time_moves_forward_only(self, harness: ClockHarness) -> None:
        first = harness.clock()
        await harness.elapse(0.01)
        second = harness.clock()
        assert second - first >= timedelta(seconds=0.01)
        assert harness.clock() >= second
