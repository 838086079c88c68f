"""Sweeper process: every few seconds, re-drive the jobs whose lease expired.

Not a Faust worker (it consumes nothing): a loop with its own producer, stopped by SIGTERM.
"""

import asyncio
import contextlib
import logging
import signal

from planstream.adapters.composition import open_runtime
from planstream.adapters.kafka import EventPublisher
from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.services.sweeper import Sweeper
from planstream.settings import Settings

__all__ = ["run"]

log = logging.getLogger(__name__)


async def _loop(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    publisher = EventPublisher(settings)
    await publisher.start()
    runtime, close = await open_runtime(settings, "sweeper", publisher)
    pool = await create_pool(settings.dsn, max_size=2)
    sweeper = Sweeper(runtime, JobLeases(pool))
    log.info("sweeper: Ready, sweeping every %gs", settings.sweeper_interval_s)
    try:
        while not stop.is_set():
            try:
                count = await sweeper.sweep()
                if count:
                    log.info("sweeper: handled %d expired jobs", count)
            except Exception:  # a failed sweep is retried at the next tick
                log.exception("sweeper: a sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.sweeper_interval_s)
    finally:
        await pool.close()
        await close()
        await publisher.stop()


def run(settings: Settings) -> None:
    """Sweep until SIGTERM."""
    asyncio.run(_loop(settings))
