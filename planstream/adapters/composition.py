"""The composition root: the one place that wires the real adapters into the services.

A process (a Faust worker, the sweeper) calls ``open_runtime`` once, and closes what it opened
with the closer it gets back.
"""

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from planstream.adapters.imaging import PillowImaging
from planstream.adapters.legacy import LegacyClient
from planstream.adapters.model import ModelClient
from planstream.adapters.postgres.db import OUTAGE_ERRORS, create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.model_calls import ModelCallLog
from planstream.adapters.postgres.rate_limiter import RateLimiter
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.routes import Routes
from planstream.adapters.storage import Storage
from planstream.domain.ids import new_id
from planstream.domain.service_names import job_service
from planstream.ports import LegacyFunction, Publisher
from planstream.services.jobs import Jobs
from planstream.services.routing import Routing
from planstream.services.runtime import Runtime, utc_now
from planstream.services.signing import SignedUrls
from planstream.settings import Settings

__all__ = ["open_legacy_function", "open_runtime"]


async def open_runtime(
    settings: Settings, service: str, publisher: Publisher
) -> tuple[Runtime, Callable[[], Awaitable[None]]]:
    """Open the pools and clients of ``service``; returns the runtime and its closer."""
    stack = AsyncExitStack()
    pool = await create_pool(
        settings.dsn,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        command_timeout=settings.db_timeout_s,
    )
    stack.push_async_callback(pool.close)
    storage = Storage(settings)
    await storage.start()
    stack.push_async_callback(storage.stop)
    model = ModelClient(settings)
    await model.start()
    stack.push_async_callback(model.stop)
    repo = Repository(pool)
    leases = JobLeases(pool)
    runtime = Runtime(
        settings=settings,
        repo=repo,
        storage=storage,
        model=model,
        model_calls=ModelCallLog(pool),
        publisher=publisher,
        imaging=PillowImaging(),
        signed_urls=SignedUrls(repo, storage, settings, utc_now),
        jobs=Jobs(
            leases,
            settings,
            job_service(service),
            worker_id=f"{service}-{new_id('job')[4:16]}",
        ),
        limiter=RateLimiter(pool),
        routing=Routing(Routes(pool), settings.route_cache_s, utc_now),
        outage_errors=OUTAGE_ERRORS,
    )
    return runtime, stack.aclose


async def open_legacy_function(
    settings: Settings,
) -> tuple[LegacyFunction, Callable[[], Awaitable[None]]]:
    """The old run-pipeline-step function's client (the legacy bridge's); and its closer."""
    client = LegacyClient(settings)
    await client.start()
    return client, client.stop
