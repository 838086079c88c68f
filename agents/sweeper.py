"""Sweeper process: every few seconds, re-drive the jobs whose lease expired, then measure the
backlog (consumer lag, the oldest unfinished job, blocked runs) for the metrics endpoint.

Not a Faust worker (it consumes nothing): a loop with its own producer, stopped by SIGTERM.
"""

import asyncio
import contextlib
import logging
import signal
import time

import asyncpg

from planstream.adapters.composition import open_runtime
from planstream.adapters.kafka import EventPublisher
from planstream.adapters.kafka.lag import ConsumerLag, consumer_groups
from planstream.adapters.metrics_server import Liveness, serving_metrics
from planstream.adapters.postgres.backlog import blocked_runs, oldest_unfinished_jobs
from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.tracing import RunTracePublisher
from planstream.services import metrics
from planstream.services.sweeper import Sweeper
from planstream.settings import Settings

__all__ = ["run"]

log = logging.getLogger(__name__)

SERVICE = "sweeper"


async def _measure(pool: asyncpg.Pool, lag: ConsumerLag) -> None:
    """Set the backlog gauges; a part that fails keeps its last values (logged)."""
    try:
        metrics.set_oldest_pending_jobs(await oldest_unfinished_jobs(pool))
        metrics.set_runs_blocked(await blocked_runs(pool))
    except Exception as exc:
        log.warning("sweeper: could not measure the jobs and runs (%s)", type(exc).__name__)
    try:
        metrics.set_consumer_lag(await lag.read())
    except Exception as exc:
        log.warning("sweeper: could not measure the consumer lag (%s)", type(exc).__name__)


async def _loop(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    liveness = Liveness(settings.liveness_s)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(serving_metrics(settings, SERVICE, liveness))
        publisher = EventPublisher(settings, SERVICE)
        await publisher.start()
        stack.push_async_callback(publisher.stop)
        pool = await create_pool(settings.dsn, max_size=2, command_timeout=settings.db_timeout_s)
        stack.push_async_callback(pool.close)
        # It consumes no event: a re-drive joins the trace its run keeps.
        traced = RunTracePublisher(publisher, Repository(pool).run_traceparent, SERVICE)
        runtime, close = await open_runtime(settings, SERVICE, traced)
        stack.push_async_callback(close)
        lag = ConsumerLag(settings, consumer_groups(settings))
        await lag.start()
        stack.push_async_callback(lag.stop)
        sweeper = Sweeper(runtime, JobLeases(pool))
        log.info("sweeper: Ready, sweeping every %gs", settings.sweeper_interval_s)
        while not stop.is_set():
            started = time.monotonic()
            try:
                count = await sweeper.sweep()
                if count:
                    log.info("sweeper: handled %d expired jobs", count)
            except Exception:  # a failed sweep is retried at the next tick
                log.exception("sweeper: a sweep failed")
            await _measure(pool, lag)
            metrics.observe_handling(SERVICE, "sweep", time.monotonic() - started)
            liveness.beat()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.sweeper_interval_s)


def run(settings: Settings) -> None:
    """Sweep until SIGTERM."""
    asyncio.run(_loop(settings))
