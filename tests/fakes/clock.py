"""A settable clock: time moves only when a test moves it, so lease expiry is deterministic."""

from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ["START", "FakeClock"]

START: Final = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class FakeClock:
    """``clock()`` (or ``clock.now()``) is the current moment; ``advance`` and ``set`` move it."""

    def __init__(self, start: datetime = START) -> None:
        if start.tzinfo is None:
            raise ValueError("the fake clock keeps aware UTC datetimes only")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        """The current moment (the same as calling the clock)."""
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move time forward by ``seconds`` (never back) and return the new moment."""
        if seconds < 0:
            raise ValueError("the fake clock never goes back")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``, which must not be earlier than now."""
        if moment.tzinfo is None or moment < self._now:
            raise ValueError("set the fake clock to an aware moment no earlier than now")
        self._now = moment
