"""The composition root: the one place that wires the real adapters into the services.

A process (a Faust worker, the sweeper) calls ``open_runtime`` once, and closes what it opened
with the closer it gets back.

A replay process (``python -m agents SERVICE --replay``) calls ``open_replay_runtime``: the same
services over the same adapters, put inside the replay whose event is in hand
(``current_replay``, set by the app per event; docs/replay.md):

- records: the replay pool, whose every connection works in the replay's own schema;
- storage: writes under ``replays/<replay_id>/`` only (reads reach production's objects);
- publisher: the events inside an attempt on their replay twins, stamped; the rest dropped;
- model: the recorded answers for a frozen replay (no model client is ever opened for it), the
  model behind the replay's cost cap for a live one;
- rate limit: production's, shared, for a live replay; none for a frozen one;
- routing: always the new path, nothing recorded.
"""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import asyncpg

from planstream.adapters.imaging import PillowImaging
from planstream.adapters.legacy import LegacyClient
from planstream.adapters.model import ModelClient
from planstream.adapters.postgres.db import OUTAGE_ERRORS, create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.model_calls import ModelCallLog
from planstream.adapters.postgres.rate_limiter import RateLimiter
from planstream.adapters.postgres.recorded_answers import RecordedAnswers
from planstream.adapters.postgres.replay_ledger import ReplayLedger
from planstream.adapters.postgres.replay_pool import create_replay_pool, current_replay
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.routes import Routes
from planstream.adapters.storage import Storage
from planstream.domain.ids import new_id
from planstream.domain.service_names import job_service
from planstream.ports import ArtifactStore, LegacyFunction, Publisher
from planstream.ports import ModelClient as ModelPort
from planstream.ports import RateLimiter as RateLimiterPort
from planstream.services.jobs import Jobs
from planstream.services.replay_model import CostGate, CurrentReplay, FrozenModel, ReplayModel
from planstream.services.replay_scope import (
    NewPathRoutes,
    ReplayLimiter,
    ReplayPublisher,
    ReplayStorage,
)
from planstream.services.routing import Routing
from planstream.services.runtime import Runtime, utc_now
from planstream.services.signing import SignedUrls
from planstream.settings import Settings

__all__ = ["open_legacy_function", "open_replay_runtime", "open_runtime"]

Closer = Callable[[], Awaitable[None]]


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
    storage = await _storage(settings, stack)
    model = ModelClient(settings)
    await model.start()
    stack.push_async_callback(model.stop)
    runtime = _runtime(
        settings,
        service,
        pool,
        storage=storage,
        model=model,
        publisher=publisher,
        limiter=RateLimiter(pool),
        routing=Routing(Routes(pool), settings.route_cache_s, utc_now),
    )
    return runtime, stack.aclose


async def open_replay_runtime(
    settings: Settings, service: str, publisher: Publisher
) -> tuple[Runtime, ReplayLedger, Closer]:
    """Open the pools and clients of ``service`` in replay mode; returns the runtime, the
    replays' ledger (for the app's checks and marks) and the closer."""
    stack = AsyncExitStack()
    pool = await create_replay_pool(settings)
    stack.push_async_callback(pool.close)
    storage = await _storage(settings, stack)
    ledger = ReplayLedger(pool)
    replay = CurrentReplay(ledger, current_replay.get)
    frozen = FrozenModel(RecordedAnswers(pool, current_replay.get), storage, settings, replay)
    live = CostGate(_LazyModel(settings, stack), settings, replay)
    runtime = _runtime(
        settings,
        service,
        pool,
        storage=ReplayStorage(storage, replay),
        model=ReplayModel(replay, frozen, live),
        publisher=ReplayPublisher(publisher, replay),
        limiter=ReplayLimiter(RateLimiter(pool), replay),
        routing=Routing(NewPathRoutes(), settings.route_cache_s, utc_now),
    )
    return runtime, ledger, stack.aclose


async def _storage(settings: Settings, stack: AsyncExitStack) -> Storage:
    storage = Storage(settings)
    await storage.start()
    stack.push_async_callback(storage.stop)
    return storage


def _runtime(
    settings: Settings,
    service: str,
    pool: asyncpg.Pool,
    *,
    storage: ArtifactStore,
    model: ModelPort,
    publisher: Publisher,
    limiter: RateLimiterPort,
    routing: Routing,
) -> Runtime:
    """The runtime of ``service`` over ``pool`` and the given parts."""
    repo = Repository(pool)
    return Runtime(
        settings=settings,
        repo=repo,
        storage=storage,
        model=model,
        model_calls=ModelCallLog(pool),
        publisher=publisher,
        imaging=PillowImaging(),
        signed_urls=SignedUrls(repo, storage, settings, utc_now),
        jobs=Jobs(
            JobLeases(pool),
            settings,
            job_service(service),
            worker_id=f"{service}-{new_id('job')[4:16]}",
            outages=OUTAGE_ERRORS,
        ),
        limiter=limiter,
        routing=routing,
        outage_errors=OUTAGE_ERRORS,
    )


class _LazyModel:
    """The model client, opened on the first live replay call (a process that only serves
    frozen replays never opens one) and closed with the runtime."""

    def __init__(self, settings: Settings, stack: AsyncExitStack) -> None:
        self._settings = settings
        self._stack = stack
        self._client: ModelClient | None = None
        self._lock = asyncio.Lock()

    async def __call__(self) -> ModelPort:
        async with self._lock:
            if self._client is None:
                client = ModelClient(self._settings)
                await client.start()
                self._stack.push_async_callback(client.stop)
                self._client = client
            return self._client


async def open_legacy_function(
    settings: Settings,
) -> tuple[LegacyFunction, Callable[[], Awaitable[None]]]:
    """The old run-pipeline-step function's client (the legacy bridge's); and its closer."""
    client = LegacyClient(settings)
    await client.start()
    return client, client.stop
