"""A bounded pool of background work: many model calls in flight, one at a time per key.

An agent hands each event's work to the pool and reads on, so one slow call never holds up the
other runs on its partition; ``submit`` waits only when every slot is taken (back-pressure).
Work under the same key (a run's step) runs in submission order, never two at once.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

from planstream.services import metrics

__all__ = ["WorkPool"]

log = logging.getLogger(__name__)


class WorkPool:
    """At most ``limit`` coroutines at once; per key, one after the other."""

    def __init__(self, limit: int, name: str) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._limit = limit
        self._name = name
        self._tails: dict[Hashable, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        metrics.watch_work_pool(name, limit, lambda: self.in_flight)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def submit(self, key: Hashable, work: Callable[[], Awaitable[None]]) -> None:
        """Start ``work`` in the background once a slot is free; returns when it has started."""
        await self._slots.acquire()
        previous = self._tails.get(key)
        task = asyncio.create_task(self._run(key, previous, work), name=f"{self._name}:{key}")
        self._tails[key] = task
        self._tasks.add(task)

    async def _run(
        self,
        key: Hashable,
        previous: asyncio.Task[None] | None,
        work: Callable[[], Awaitable[None]],
    ) -> None:
        current = asyncio.current_task()
        try:
            if previous is not None:
                await asyncio.wait([previous])
            await work()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("work failed in pool %s", self._name)
        finally:
            self._slots.release()
            self._tasks.discard(current)  # type: ignore[arg-type]
            if self._tails.get(key) is current:
                del self._tails[key]

    async def drain(self, timeout_s: float) -> None:
        """Wait for the work in flight; cancel what is still running after ``timeout_s``."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.warning("pool %s cancelled %d tasks at shutdown", self._name, len(pending))
