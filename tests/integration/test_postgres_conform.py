"""The PostgreSQL adapters pass the conformance suites their in-memory fakes pass: job leases,
the repository, the model-call log, the rate limiter and the routing flags (two pools: two
processes' connections), on the session's own database."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from planstream.adapters.postgres.db import create_pool
from planstream.adapters.postgres.leases import JobLeases
from planstream.adapters.postgres.model_calls import ModelCallLog
from planstream.adapters.postgres.rate_limiter import RateLimiter
from planstream.adapters.postgres.repository import Repository
from planstream.adapters.postgres.routes import Routes
from planstream.domain.events import step_key
from planstream.domain.ids import new_id
from planstream.settings import Settings
from tests.conformance.leases import JobLeasesContract
from tests.conformance.model_calls import ModelCallLogContract
from tests.conformance.rate_limiter import RateLimiterContract
from tests.conformance.repository import RepositoryContract, make_run
from tests.conformance.routes import RESET, RoutesContract

_JOB = """
SELECT status, attempts, lease_epoch, result_epoch, locked_by, payload_ref, result_ref,
       last_error, redrives
FROM pipeline_jobs WHERE job_id = $1
"""
_STALE = """
SELECT presented_epoch, current_epoch, worker_id, attempted
FROM pipeline_stale_writes WHERE job_id = $1 ORDER BY id
"""
_DECISION = """
INSERT INTO pipeline_decisions (decision_id, run_id, step_id, attempt, idempotency_key, decision,
                                retry_budget_remaining, block_reason)
VALUES ($1, $2, $3, $4, $5, 'block', 0, 'retry_budget_exhausted')
"""


class _Records:
    """One harness for the three suites: the adapters over the session's pool."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self.repo = Repository(pool)
        self.leases = JobLeases(pool)
        self.log = ModelCallLog(pool)
        self.bucket = settings.s3_bucket

    async def new_run(self) -> str:
        run, _ = await make_run(self.repo, self.bucket)
        return run.run_id

    async def elapse(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # the leases read PostgreSQL's now()

    async def job(self, job_id: str) -> dict[str, Any]:
        row = await self._pool.fetchrow(_JOB, job_id)
        assert row is not None, f"no job {job_id}"
        return dict(row)

    async def stale_writes(self, job_id: str) -> list[tuple[int, int, str, str]]:
        return [tuple(row) for row in await self._pool.fetch(_STALE, job_id)]

    async def record_decision(self, run_id: str, step_id: int, attempt: int) -> None:
        key = step_key(run_id, step_id, attempt)
        await self._pool.execute(_DECISION, new_id("dec"), run_id, step_id, attempt, key)

    async def claim_review(self, run_id: str, step_id: int, attempt: int, event_id: str) -> None:
        await self._pool.execute(
            "INSERT INTO run_reviews (run_id, step_id, attempt, event_id, action, reviewer,"
            " reason) VALUES ($1, $2, $3, $4, 'approve', 'conformance', 'a claim')",
            run_id,
            step_id,
            attempt,
            event_id,
        )

    async def outcome(self, call_id: str) -> str | None:
        found = await self._pool.fetchval(
            "SELECT outcome FROM pipeline_model_calls WHERE call_id = $1", call_id
        )
        return None if found is None else str(found)

    async def answer(self, call_id: str) -> str | None:
        found = await self._pool.fetchval(
            "SELECT answer FROM pipeline_model_calls WHERE call_id = $1", call_id
        )
        return None if found is None else str(found)


@pytest.fixture
def records(pool: asyncpg.Pool, settings: Settings) -> _Records:
    return _Records(pool, settings)


class TestPostgresJobLeases(JobLeasesContract):
    @pytest.fixture
    def harness(self, records: _Records) -> _Records:
        return records


class TestPostgresRepository(RepositoryContract):
    @pytest.fixture
    def harness(self, records: _Records) -> _Records:
        return records


class TestPostgresModelCallLog(ModelCallLogContract):
    @pytest.fixture
    def harness(self, records: _Records) -> _Records:
        return records


class _Limiters:
    """The rate limiter over the session's pool, and another over a pool of its own."""

    def __init__(self, pool: asyncpg.Pool, other: asyncpg.Pool) -> None:
        self.limiter = RateLimiter(pool)
        self._other = RateLimiter(other)

    def other(self) -> RateLimiter:
        return self._other

    async def elapse(self, seconds: float) -> None:
        await asyncio.sleep(seconds)  # the buckets read PostgreSQL's clock


@pytest.fixture(scope="module")
async def other_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.dsn)
    yield pool
    await pool.close()


class TestPostgresRateLimiter(RateLimiterContract):
    @pytest.fixture
    def harness(self, pool: asyncpg.Pool, other_pool: asyncpg.Pool) -> _Limiters:
        return _Limiters(pool, other_pool)


class _Flags:
    """The routing flags over the session's pool, and another store over a pool of its own."""

    def __init__(self, pool: asyncpg.Pool, other: asyncpg.Pool, settings: Settings) -> None:
        self.routes = Routes(pool)
        self._other = Routes(other)
        self._repo = Repository(pool)
        self._bucket = settings.s3_bucket

    def other(self) -> Routes:
        return self._other

    async def new_run(self) -> str:
        run, _ = await make_run(self._repo, self._bucket)
        return run.run_id


class TestPostgresRoutes(RoutesContract):
    @pytest.fixture
    async def harness(
        self, pool: asyncpg.Pool, other_pool: asyncpg.Pool, settings: Settings
    ) -> AsyncIterator[_Flags]:
        flags = _Flags(pool, other_pool, settings)
        yield flags
        # The flags are the session database's: leave them as the services expect them.
        await flags.routes.set_flags(RESET, operator="conformance", reason="reset after a test")
